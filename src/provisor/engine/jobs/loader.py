"""Load a job file (YAML) into a validated, frozen :class:`~provisor.engine.jobs.model.Job`.

```yaml
name: clarizen-one                       # required; letters, digits, . _ -
source:                                  # required
  type: scim                             # scim | csv | jsonl
  url: http://127.0.0.1:8000/scim/v2     # scim: url + token; csv/jsonl: path
  token: ${DIRECTORY_TOKEN}
target:                                  # required
  url: http://127.0.0.1:8000/scim/v2
  token: ${APP_TOKEN}
  patch_dialect: entra                   # entra | aadOptscim062020 | rfc
  concurrency: 8
  timeout_seconds: 30
template: clarizen-one                   # clarizen-one | scim-default | absent: mappings only
mappings: []                             # see _mappings.py
scope: {mode: assigned}                  # see _scope.py
state: sqlite:///clarizen-one.state.db   # default sqlite:///<name>.state.db
interval_minutes: 40
settings: {skip_out_of_scope_deletions: false, deletion_threshold: 500}
logs: {retention_days: 30}               # provisioning logs older than this are pruned
notifications:
  email: it-ops@example.com              # one address or a list
  smtp: smtp://127.0.0.1:8025            # smtp:// or smtps://, user:password@ allowed
  smtp_user: ${SMTP_USER:-}              # or separate keys (preferred for passwords)
  smtp_password: ${SMTP_PASSWORD:-}
  sender: provisor@example.com
  notify_on_failure: true
```

Relative paths (a ``sqlite:///`` state database, a csv/jsonl ``path``) are resolved against the
folder of the job file (``base_dir`` for :func:`parse_job`; left relative when it is ``None``).
Defaults follow entra-behaviour.md: interval 40 minutes (2.5), deletion threshold 500 (2.7),
disable out-of-scope users (2.6), notify on failure (2.14), keep provisioning logs 30 days (2.12).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit

import yaml

from provisor.engine.jobs._mappings import read_mappings
from provisor.engine.jobs._reader import Reader, Section, url_problem
from provisor.engine.jobs._scope import SCOPE_KEYS, read_scope
from provisor.engine.jobs.errors import JobFileError
from provisor.engine.jobs.model import (
    DEFAULT_DELETION_THRESHOLD,
    DEFAULT_INTERVAL_MINUTES,
    DEFAULT_LOG_RETENTION_DAYS,
    TEMPLATES,
    Job,
    LogsConfig,
    NotificationConfig,
    PatchDialect,
    Secret,
    Settings,
    SmtpConfig,
    SourceConfig,
    SourceType,
    TargetConfig,
)

__all__ = ["load_job_file", "parse_job"]

JOB_KEYS = (
    "name",
    "source",
    "target",
    "template",
    "mappings",
    "scope",
    "state",
    "interval_minutes",
    "settings",
    "notifications",
    "logs",
)
SOURCE_KEYS = ("type", "url", "path", "token", "options")
TARGET_KEYS = ("url", "token", "patch_dialect", "concurrency", "timeout_seconds")
SETTINGS_KEYS = ("skip_out_of_scope_deletions", "deletion_threshold")
LOGS_KEYS = ("retention_days",)
NOTIFICATION_KEYS = ("email", "smtp", "smtp_user", "smtp_password", "sender", "notify_on_failure")

MAX_INTERVAL = 7 * 24 * 60  # a week, in minutes
MAX_RETENTION_DAYS = 10 * 366  # ten years
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DB_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://.*", re.DOTALL)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def load_job_file(
    path: Path, env: Mapping[str, str], *, unset: Callable[[str, str], str | None] | None = None
) -> Job:
    """Read and validate the job file at ``path``; ``${VAR}`` references read ``env`` (and a
    variable that is not set reads as ``unset(name, key)`` when that gives a value: ``parse_job``).

    :raises JobFileError: naming the file, the line and the problem.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobFileError(path.name, f"cannot read the job file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
        raise JobFileError(path.name, f"cannot read the job file: not UTF-8 text ({where})") from None
    return parse_job(text, env, source_name=path.name, base_dir=path.resolve().parent, unset=unset)


def parse_job(
    text: str,
    env: Mapping[str, str],
    *,
    source_name: str,
    base_dir: Path | None = None,
    unset: Callable[[str, str], str | None] | None = None,
) -> Job:
    """Validate job-file ``text``; ``source_name`` names it in errors, ``base_dir`` anchors
    relative paths; ``unset(name, key)`` is what a variable that is not set reads as in the value
    of ``key`` (dotted: ``target.token``), when it gives one; else such a variable is an error.

    :raises JobFileError: naming ``source_name``, the line and the problem.
    """
    reader = Reader(source_name, env, unset)
    root = _compose(text, source_name)
    top = reader.section(root, "", JOB_KEYS)
    name = (top.string("name", required=True) or "").strip()
    if _JOB_NAME.fullmatch(name) is None:
        top.fail(
            "name", "name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    template = top.choice("template", TEMPLATES)
    source = top.require_section("source", SOURCE_KEYS)
    target = top.require_section("target", TARGET_KEYS)
    settings = top.section("settings", SETTINGS_KEYS)
    notifications = top.section("notifications", NOTIFICATION_KEYS)
    return Job(
        name=name,
        source=_source(source, base_dir),
        target=_target(target),
        state=_state(top, name, base_dir),
        template=template,
        mappings=read_mappings(reader, top.items("mappings")),
        scope=read_scope(reader, top.section("scope", SCOPE_KEYS), template=template),
        interval_minutes=top.integer(
            "interval_minutes", DEFAULT_INTERVAL_MINUTES, minimum=1, maximum=MAX_INTERVAL
        ),
        settings=_settings(settings),
        notifications=None if notifications is None else _notifications(notifications),
        logs=_logs(top.section("logs", LOGS_KEYS)),
    )


#: libyaml's parser when PyYAML has it (a job assigning 1,000 groups: 14 ms instead of 155 ms),
#: with the same nodes, marks and error classes as the pure-Python one.
_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str, source_name: str) -> yaml.Node:
    """The YAML node tree; syntax errors carry PyYAML's line and column (never the snippet,
    which could hold a secret)."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        at = f" at column {column}" if column else ""
        raise JobFileError(source_name, f"YAML syntax error{at}: {problem}", line, column) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise JobFileError(source_name, f"YAML syntax error: {exc.reason}", line) from None
    except yaml.YAMLError as exc:
        raise JobFileError(source_name, f"YAML syntax error: {type(exc).__name__}") from None
    if root is None:
        raise JobFileError(source_name, "the job file is empty", 1)
    return root


def _source(section: Section, base_dir: Path | None) -> SourceConfig:
    kind = SourceType(section.choice("type", [t.value for t in SourceType]) or _missing(section, "type"))
    if kind is SourceType.SCIM:
        if section.has("path"):
            section.fail("path", "source.path does not apply to a scim source (use source.url)")
        url = _url(section, "url", {"http", "https"}, required=True)
        token = section.secret("token", required=True)
        path = None
    else:
        for key in ("url", "token"):
            if section.has(key):
                section.fail(key, f"source.{key} does not apply to a {kind.value} source (use source.path)")
        url, token = None, None
        path = Path(section.string("path", required=True) or "")
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
    options_section = section.section("options", SOURCE_OPTIONS[kind])
    options = () if options_section is None else _options(options_section, kind)
    return SourceConfig(type=kind, url=url, path=path, token=token, options=options)


#: The options each kind of source reads (``ScimSource.from_config``, ``files.from_config``),
#: checked here so that a misspelt or malformed one fails at once with its line, not at sync
SOURCE_OPTIONS: dict[SourceType, tuple[str, ...]] = {
    SourceType.SCIM: ("page_size", "id_page_size", "paging", "overlap_seconds", "nickname_from_external_id"),
    SourceType.CSV: ("anchor", "delimiter", "snapshot"),
    SourceType.JSONL: ("anchor", "snapshot"),
}


def _options(section: Section, kind: SourceType) -> tuple[tuple[str, str], ...]:
    """The options given, as the text the source reads, each checked as it will be read."""
    out: list[tuple[str, str]] = []
    for key_node, _ in section.node.value:
        key = str(key_node.value)
        if key in ("page_size", "id_page_size"):
            text = str(section.integer(key, 1, minimum=1, maximum=100_000))
        elif key == "overlap_seconds":
            no_overlap = (section.string(key) or "").strip() in ("0", "0.0")  # number() wants > 0
            text = "0" if no_overlap else repr(section.number(key, 1.0, maximum=3600))
        elif key == "paging":
            text = section.choice(key, ("auto", "keyset", "offset"), "auto")
        elif key == "nickname_from_external_id":
            text = "true" if section.boolean(key, True) else "false"
        elif key == "delimiter":
            given = section.string(key, allow_empty=True)  # a tab or a space is one character
            text = "," if given is None else given
            if len(text) != 1:
                section.fail(key, f"source.options.delimiter must be one character (got {text!r})")
        else:
            text = section.string(key) or ""
        out.append((key, text))
    return tuple(out)


def _target(section: Section) -> TargetConfig:
    dialect = section.choice("patch_dialect", [d.value for d in PatchDialect], PatchDialect.ENTRA.value)
    return TargetConfig(
        url=_url(section, "url", {"http", "https"}, required=True) or "",
        token=section.secret("token", required=True) or _missing(section, "token"),
        patch_dialect=PatchDialect(dialect),
        concurrency=section.integer("concurrency", 8, minimum=1, maximum=256),
        timeout_seconds=section.number("timeout_seconds", 30.0, maximum=3600),
    )


def _url(section: Section, key: str, schemes: set[str], *, required: bool = False) -> str | None:
    url = section.string(key, required=required)
    if url is None:
        return None
    url = url.strip()
    problem = url_problem(url, schemes)
    if problem is not None:
        node = section.value_node(key)
        assert node is not None
        section.fail(key, f"{section.name(key)} {problem} (got {_shown_url(str(node.value))})")
    return url


def _shown_url(raw: str) -> str:
    return repr(re.sub(r"//[^/@\s]*@", "//***@", raw))


def _state(top: Section, name: str, base_dir: Path | None) -> str:
    url = (top.string("state") or f"sqlite:///{name}.state.db").strip()
    if _DB_URL.fullmatch(url) is None:
        top.fail("state", "state must be a database URL such as sqlite:///jobs/clarizen.db")
    scheme, _, rest = url.partition("://")
    if scheme.split("+")[0].casefold() != "sqlite" or not rest.startswith("/"):
        return url
    database, question, query = rest[1:].partition("?")
    if base_dir is None or database in ("", ":memory:") or database.startswith("/"):
        return url
    return f"{scheme}:///{(base_dir / database).as_posix()}{question}{query}"


def _settings(section: Section | None) -> Settings:
    if section is None:
        return Settings()
    return Settings(
        skip_out_of_scope_deletions=section.boolean("skip_out_of_scope_deletions", False),
        deletion_threshold=section.integer("deletion_threshold", DEFAULT_DELETION_THRESHOLD, minimum=0),
    )


def _logs(section: Section | None) -> LogsConfig:
    if section is None:
        return LogsConfig()
    return LogsConfig(
        retention_days=section.integer(
            "retention_days", DEFAULT_LOG_RETENTION_DAYS, minimum=1, maximum=MAX_RETENTION_DAYS
        )
    )


def _notifications(section: Section) -> NotificationConfig:
    node = section.require("email")
    nodes = section.items("email") if not isinstance(node, yaml.ScalarNode) else [node]
    emails: list[str] = []
    for i, item in enumerate(nodes):
        path = "notifications.email" if isinstance(node, yaml.ScalarNode) else f"notifications.email[{i}]"
        address = (section.reader.text(item, path) or "").strip()
        if _EMAIL.fullmatch(address) is None:
            section.reader.fail(item, f"{path} must be an e-mail address")
        emails.append(address)
    if not emails:
        section.fail("email", "notifications.email must name at least one address")
    sender = section.string("sender")
    if sender is not None and _EMAIL.fullmatch(sender.strip()) is None:
        section.fail("sender", "notifications.sender must be an e-mail address")
    return NotificationConfig(
        emails=tuple(emails),
        smtp=_smtp(section),
        sender=sender.strip() if sender else None,
        notify_on_failure=section.boolean("notify_on_failure", True),
    )


def _smtp(section: Section) -> SmtpConfig:
    url = _url(section, "smtp", {"smtp", "smtps"}, required=True) or ""
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    for key, in_url in (("smtp_user", user), ("smtp_password", password)):
        if section.has(key) and in_url is not None:
            section.fail(key, f"notifications.{key} conflicts with the user-info in notifications.smtp")
    if section.has("smtp_user"):
        user = section.string("smtp_user", allow_empty=True)
    if section.has("smtp_password"):
        password = section.string("smtp_password", allow_empty=True)
    tls = parts.scheme.casefold() == "smtps"
    return SmtpConfig(
        host=parts.hostname or "",
        port=parts.port or (465 if tls else 25),
        tls=tls,
        user=user or None,
        password=Secret(password) if password else None,
    )


def _missing(section: Section, key: str) -> NoReturn:
    section.require(key)
    raise AssertionError("unreachable")  # pragma: no cover
