"""Running the server under uvicorn: logging, TLS 1.2+, and a server that can run in a thread."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import uvicorn

from provisor.cli.coalescing import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    WRITE_TIMEOUT,
    OnRefused,
    coalescing_protocol,
)
from provisor.cli.common import SHUTDOWN_TIMEOUT
from provisor.cli.newcomers import Newcomers
from provisor.cli.tls import TlsHandshakes
from provisor.server import ServerConfig, create_app

if TYPE_CHECKING:
    from provisor.store.sql import SqlStore


#: The most connections a server keeps open at once (uvicorn's ``limit_concurrency``): a request
#: on a connection past it, or while as many requests are under way, is answered 503 with
#: ``Retry-After`` (``cli/coalescing.py``), and the connection closed. Also the most connections
#: held that have not sent a request yet (``cli/newcomers.py``).
MAX_CONNECTIONS = 1000


#: File descriptors a server needs besides its connections' (the database, logs, the event loop).
FILE_MARGIN = 64


def raise_file_limit(needed: int, log: logging.Logger) -> None:
    """Raise the process's soft file limit to ``needed`` when it is lower and the hard limit
    allows (the soft limit is often 1024, below what 1000 connections served and as many
    newcomers hold: ``cli/newcomers.py``), and warn when the hard limit does not. Run out of
    file descriptors, the event loop drops every new connection without a word."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning(
            "the process may open %d files, fewer than the %d that --max-connections asks for: "
            "raise its limit (ulimit -n, LimitNOFILE= in a systemd unit) or lower --max-connections",
            target,
            needed,
        )


def listen_problem(host: str, port: int) -> str | None:
    """Why a server cannot listen on ``host:port`` now, in a line with what to do; None when it can.

    The probe binds as uvicorn will (``loop.create_server`` on the host and port) and lets go at
    once. Left to uvicorn, a port in use or a host that is not this machine's was one ERROR among
    its startup lines and exit status 3 (``serve``), or a server that never started (the demo)."""
    import errno
    import socket

    async def probe() -> None:
        server = await asyncio.get_running_loop().create_server(asyncio.Protocol, host=host, port=port)
        server.close()
        await server.wait_closed()

    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        asyncio.run(probe())
    except socket.gaierror as exc:
        return (
            f"cannot listen on {where}: no such host ({exc.strerror}); give --host an address of this machine"
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"cannot listen on {where}: the port is in use (another server?); choose another --port"
        if exc.errno == errno.EACCES and 0 < port < 1024:
            return (
                f"cannot listen on {where}: ports below 1024 need root or CAP_NET_BIND_SERVICE; "
                "choose a --port of 1024 or above (a reverse proxy can serve 443)"
            )
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"cannot listen on {where}: that address is not this machine's; check --host"
        return f"cannot listen on {where}: {exc.strerror or exc}"
    return None


class _TlsConfig(uvicorn.Config):
    """uvicorn's config with TLS 1.2 as the floor (Entra speaks TLS 1.2 only; older is refused),
    the read and write timeouts that Provisor's HTTP protocol applies (``cli/coalescing.py``), and
    the cap of connections that have not sent a request yet (``cli/newcomers.py``).

    With TLS, the context is taken from uvicorn, which would hand it to the event loop, and
    Provisor's protocol terminates TLS instead (``cli/tls.py``): the handshake must be done
    within the header timeout, and a connection in its handshake is a newcomer."""

    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    write_timeout: float = WRITE_TIMEOUT
    #: Connections that have not sent a complete request head yet, held at once (past it the
    #: oldest is dropped), and those of this server (the protocols join and leave them).
    max_newcomers: int = MAX_CONNECTIONS
    newcomers: Newcomers
    #: Connections served at once from one client address (0: no such cap), and how many each
    #: address holds (the HTTP protocol counts them, ``cli/coalescing.py``).
    max_connections_per_client: int = 0
    connections_per_client: dict[str, int]
    #: Told of each request the protocol answers before the app (``coalescing.OnRefused``).
    on_refused: OnRefused | None = None

    def load(self) -> None:
        super().load()
        self.connections_per_client = {}
        self.newcomers = Newcomers(self.max_newcomers)
        if self.ssl is not None:
            self.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
            handshakes = TlsHandshakes(self.ssl, self.newcomers, self.header_timeout)
            self.http_protocol_class = cast(
                "type[asyncio.Protocol]", functools.partial(handshakes.protocol, self.http_protocol_class)
            )
            self.ssl = None  # uvicorn passes it to loop.create_server: the TLS is the protocol's


class JsonFormatter(logging.Formatter):
    """One JSON object a log line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    and ``exception`` (the traceback as text) when there is one; what a log pipeline parses
    without a pattern, like the access log's lines."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str, log_format: str = "text") -> None:
    """The root logger at ``level``, as text lines or (``json``) :class:`JsonFormatter` lines;
    uvicorn's own loggers go through it too (``build_config`` gives uvicorn no config of its own)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def build_config(
    app: Any,
    *,
    host: str,
    port: int,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    log_level: str = "info",
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    write_timeout: float = WRITE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    max_connections_per_client: int = 0,
    shutdown_timeout: float = SHUTDOWN_TIMEOUT,
) -> uvicorn.Config:
    config = _TlsConfig(
        app,
        host=host,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_level=log_level,
        log_config=None,  # uvicorn's lines go through the root logger (configure_logging)
        access_log=False,
        proxy_headers=True,
        server_header=False,
        lifespan="auto",  # a ProvisorApp writes its access log's last lines at shutdown
        http=coalescing_protocol(),
        ws="none",  # no WebSocket endpoint: a handshake is an ordinary request (coalescing.py)
        # uvicorn refuses a request when the open connections, its own counted, reach the limit
        limit_concurrency=max_connections + 1,
        # a stop waits this long at most (uvicorn's default: for ever, a TLS client that does not
        # answer the close holding it 30 s, a slow upload until its body timeout)
        timeout_graceful_shutdown=shutdown_timeout,  # type: ignore[arg-type]  # seconds, a float too
    )
    config.header_timeout = header_timeout
    config.body_timeout = body_timeout
    config.write_timeout = write_timeout
    config.max_newcomers = max_connections
    config.max_connections_per_client = max_connections_per_client
    # the requests the protocol answers itself are counted and logged by the app (cli/coalescing.py)
    config.on_refused = getattr(app, "refused", None)
    return config


def run_server(
    store: SqlStore,
    *,
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    max_page_size: int,
    max_body_bytes: int,
    log_level: str,
    access_log: bool,
    log_format: str = "text",
    documentation_uri: str | None = None,
    public_url: str | None = None,
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    write_timeout: float = WRITE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
    max_connections_per_client: int = 0,
    shutdown_timeout: float = SHUTDOWN_TIMEOUT,
) -> None:
    """Serve ``store`` until stopped (the caller opens and closes it)."""
    configure_logging(log_level, log_format)
    config = ServerConfig(
        max_page_size=max_page_size,
        max_body_bytes=max_body_bytes,
        access_log=access_log,
        documentation_uri=documentation_uri,
        public_url=public_url,
    )
    app = create_app(store, config)
    scheme = "https" if tls_cert else "http"
    log = logging.getLogger("provisor")
    if not store.list_tenants():
        log.warning(
            "the database has no tenant yet, so every request will be 401: create one (it prints its "
            "Secret Token) with: provisor tenant create NAME --db %s",
            store.engine.url.render_as_string(hide_password=True),
        )
    # the connections served, and as many newcomers (cli/newcomers.py), over TLS or not
    raise_file_limit(2 * max_connections + FILE_MARGIN, log)

    def announce(bound: int) -> None:  # the port bound: another than asked for --port 0
        shown = f"[{host}]" if ":" in host else host
        log.info("serving SCIM at %s://%s:%d%s", scheme, shown, bound, config.base_path)

    _AnnouncingServer(
        announce,
        build_config(
            app,
            host=host,
            port=port,
            tls_cert=tls_cert,
            tls_key=tls_key,
            log_level=log_level,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            write_timeout=write_timeout,
            max_connections=max_connections,
            max_connections_per_client=max_connections_per_client,
            shutdown_timeout=shutdown_timeout,
        ),
    ).run()


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, telling ``announce`` the port it listens on once it does."""

    def __init__(self, announce: Callable[[int], None], config: uvicorn.Config) -> None:
        super().__init__(config)
        self._announce = announce

    def _log_started_message(self, listeners: Any) -> None:
        """Nothing: ``announce`` says where SCIM is served (uvicorn's own line said http:// over
        TLS, as Provisor's protocol, not uvicorn, terminates it: ``cli/tls.py``)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        for server in self.servers:
            for sock in server.sockets:
                self._announce(int(sock.getsockname()[1]))
                return


class BackgroundServer:
    """A uvicorn server in a daemon thread (for the demo and tests); ``options`` are
    :func:`build_config`'s (timeouts, connections)."""

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning", **options: Any
    ) -> None:
        self.server = uvicorn.Server(build_config(app, host=host, port=port, log_level=log_level, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    @property
    def port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the server is not listening")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
