"""The engine's side of SCIM: the client Entra's provisioning service is to an app (entra-behaviour.md 1)."""

from __future__ import annotations

from provisor.engine.targets.errors import (
    Conflict,
    InvalidCredentials,
    MultipleEntries,
    NotFoundError,
    ProtocolError,
    RequestRejected,
    ScimComplianceError,
    ServerError,
    ServiceIncompatible,
    TargetError,
    TimeoutError_,
    TooManyRequests,
)
from provisor.engine.targets.patch import PatchOperation, render_patch
from provisor.engine.targets.retry import RetryPolicy
from provisor.engine.targets.scim_client import ScimTarget
from provisor.engine.targets.stats import TargetStats

__all__ = [
    "Conflict",
    "InvalidCredentials",
    "MultipleEntries",
    "NotFoundError",
    "PatchOperation",
    "ProtocolError",
    "RequestRejected",
    "RetryPolicy",
    "ScimComplianceError",
    "ScimTarget",
    "ServerError",
    "ServiceIncompatible",
    "TargetError",
    "TargetStats",
    "TimeoutError_",
    "TooManyRequests",
    "render_patch",
]
