"""Provisioning jobs as YAML job files: the frozen model and its loader (entra-behaviour.md 2.1).

``load_job_file(path, env)`` is the one function that reads a file; ``parse_job(text, env, ...)``
does the same from text. Both take the environment as a mapping and never read ``os.environ``.
"""

from __future__ import annotations

from provisor.engine.jobs.errors import JobFileError
from provisor.engine.jobs.loader import load_job_file, parse_job
from provisor.engine.jobs.model import (
    TEMPLATES,
    ApplyMapping,
    Assignment,
    Job,
    LogsConfig,
    MappingConfig,
    MappingObject,
    MappingType,
    NotificationConfig,
    PatchDialect,
    ScopeConfig,
    ScopeMode,
    Secret,
    Settings,
    SmtpConfig,
    SourceConfig,
    SourceType,
    TargetConfig,
)

__all__ = [
    "TEMPLATES",
    "ApplyMapping",
    "Assignment",
    "Job",
    "JobFileError",
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
    "load_job_file",
    "parse_job",
]
