"""The HTTP edge: Starlette routes, Secret Token auth, and the one place errors become responses."""

from provisor.server.app import create_app
from provisor.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
