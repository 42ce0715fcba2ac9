"""The provisioning job as configured in a job file (entra-behaviour.md 2.1): frozen, validated.

One job = one source directory provisioned into one SCIM target with its own scope, mappings,
state and notification settings. Every object here is immutable and already validated by
:mod:`provisor.engine.jobs.loader`; constructing them directly skips that validation.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from provisor.engine.scoping import ScopingFilters

__all__ = [
    "DEFAULT_ACCESS_ROLE",
    "DEFAULT_DELETION_THRESHOLD",
    "DEFAULT_INTERVAL_MINUTES",
    "DEFAULT_LOG_RETENTION_DAYS",
    "TEMPLATES",
    "ApplyMapping",
    "Assignment",
    "Job",
    "LogsConfig",
    "MappingConfig",
    "MappingObject",
    "MappingType",
    "NotificationConfig",
    "PatchDialect",
    "ScopeConfig",
    "ScopeMode",
    "Secret",
    "Settings",
    "SmtpConfig",
    "SourceConfig",
    "SourceType",
    "TargetConfig",
]

#: Mapping templates a job may start from; ``None`` means "only the job file's mappings".
TEMPLATES: Final = ("clarizen-one", "scim-default")
#: "approximately every 40 minutes" (entra-behaviour.md 2.5).
DEFAULT_INTERVAL_MINUTES: Final = 40
#: ``QuarantineTooManyDeletesThreshold`` default (entra-behaviour.md 2.7); 0 disables the check.
DEFAULT_DELETION_THRESHOLD: Final = 500
#: Provisioning logs are kept 30 days (entra-behaviour.md 2.12, premium tenants; 7 on free ones).
DEFAULT_LOG_RETENTION_DAYS: Final = 30
#: The role Entra gives an assignment made without choosing one (entra-behaviour.md 2.2).
DEFAULT_ACCESS_ROLE: Final = "Default Access"


class Secret:
    """A credential whose value never reaches a log: ``repr`` and ``str`` are ``***``.

    Call :meth:`reveal` at the one place the value is sent (an ``Authorization`` header, an SMTP
    login). Equality compares values in constant time.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))


class SourceType(enum.StrEnum):
    """Where the job reads the source directory from."""

    SCIM = "scim"
    CSV = "csv"
    JSONL = "jsonl"


class PatchDialect(enum.StrEnum):
    """How PATCH bodies are written to the target (entra-behaviour.md 1.4; ``aadOptscim062020``
    is Entra's opt-in RFC-compliant behaviour flag, ``rfc`` strict RFC 7644)."""

    ENTRA = "entra"
    AAD_OPT_SCIM_062020 = "aadOptscim062020"
    RFC = "rfc"


class ScopeMode(enum.StrEnum):
    """ "Sync only assigned users and groups" or "Sync all users and groups" (entra-behaviour.md 2.2)."""

    ASSIGNED = "assigned"
    ALL = "all"


class MappingType(enum.StrEnum):
    """Attribute mapping types (entra-behaviour.md 3.1)."""

    DIRECT = "Direct"
    CONSTANT = "Constant"
    EXPRESSION = "Expression"
    NONE = "None"


class ApplyMapping(enum.StrEnum):
    """ "Apply this mapping" (entra-behaviour.md 3.1)."""

    ALWAYS = "Always"
    ONLY_DURING_CREATION = "OnlyDuringCreation"


class MappingObject(enum.StrEnum):
    """The object mapping an attribute mapping belongs to."""

    USER = "user"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """The source directory. ``url`` + ``token`` for ``scim``; ``path`` (absolute, resolved
    against the job file's folder) for ``csv`` and ``jsonl``. ``options`` are connector-specific
    settings (e.g. a CSV ``delimiter``) as ``(name, text)`` pairs, in file order; the connector
    interprets the text."""

    type: SourceType
    url: str | None = None
    path: Path | None = None
    token: Secret | None = None
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str, default: str | None = None) -> str | None:
        """The option called ``name``, or ``default``."""
        return dict(self.options).get(name, default)


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """The SCIM service provider: tenant URL and Secret Token (entra-behaviour.md 1.1)."""

    url: str
    token: Secret
    patch_dialect: PatchDialect = PatchDialect.ENTRA
    concurrency: int = 8
    timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class MappingConfig:
    """One attribute mapping override (entra-behaviour.md 3.1, matching 2.4).

    Exactly one of ``source`` (Direct), ``constant`` (Constant) or ``expression`` (Expression) is
    set; all three are ``None`` for type None. The expression text is compiled by the mapping
    engine, not here.
    """

    target: str
    type: MappingType
    object: MappingObject = MappingObject.USER
    source: str | None = None
    constant: str | None = None
    expression: str | None = None
    default_value: str | None = None
    apply: ApplyMapping = ApplyMapping.ALWAYS
    matching_precedence: int | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """An app role assignment (entra-behaviour.md 2.2): exactly one of ``user`` or ``group``."""

    role: str = DEFAULT_ACCESS_ROLE
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class ScopeConfig:
    """Assignment scope plus attribute scoping filters per object type (entra-behaviour.md 2.2,
    2.3). ``skip_default_access`` excludes users whose only role is Default Access ("not
    effectively entitled"), the Clarizen tutorial's behaviour (2.2 conflict note)."""

    mode: ScopeMode = ScopeMode.ASSIGNED
    assignments: tuple[Assignment, ...] = ()
    skip_default_access: bool = False
    user_filters: ScopingFilters = field(default_factory=ScopingFilters)
    group_filters: ScopingFilters = field(default_factory=ScopingFilters)


@dataclass(frozen=True, slots=True)
class Settings:
    """``SkipOutOfScopeDeletions`` (entra-behaviour.md 2.6) and the accidental-deletion threshold
    (2.7; 0 disables it)."""

    skip_out_of_scope_deletions: bool = False
    deletion_threshold: int = DEFAULT_DELETION_THRESHOLD


@dataclass(frozen=True, slots=True)
class LogsConfig:
    """Provisioning logs (entra-behaviour.md 2.12): records older than ``retention_days`` are
    deleted after each cycle."""

    retention_days: int = DEFAULT_LOG_RETENTION_DAYS


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """The mail relay for notification e-mails; ``tls`` is true for ``smtps://``."""

    host: str
    port: int
    tls: bool = False
    user: str | None = None
    password: Secret | None = None


@dataclass(frozen=True, slots=True)
class NotificationConfig:
    """Notification Email + "Send an email notification when a failure occurs" (2.14)."""

    emails: tuple[str, ...] = ()
    smtp: SmtpConfig | None = None
    sender: str | None = None
    notify_on_failure: bool = True


@dataclass(frozen=True, slots=True)
class Job:
    """One provisioning job (entra-behaviour.md 2.1). ``state`` is a database URL; a relative
    ``sqlite:///`` path has been resolved against the job file's folder."""

    name: str
    source: SourceConfig
    target: TargetConfig
    state: str
    template: str | None = None
    mappings: tuple[MappingConfig, ...] = ()
    scope: ScopeConfig = field(default_factory=ScopeConfig)
    interval_minutes: int = DEFAULT_INTERVAL_MINUTES
    settings: Settings = field(default_factory=Settings)
    notifications: NotificationConfig | None = None
    logs: LogsConfig = field(default_factory=LogsConfig)
