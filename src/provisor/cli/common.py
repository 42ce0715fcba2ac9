"""What every ``provisor`` command shares: the database option, one-line failures, limits.

Errors are one line on stderr (``provisor: ...``) and a non-zero exit, never a traceback: 1 for a
failure, 2 for a usage error.
"""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

DEFAULT_DB = "sqlite:///provisor.db"
#: The largest page a server or a tenant may be configured with.
MAX_PAGE_SIZE = 1_000_000
#: The largest request body a server may be configured to accept (1 GiB).
MAX_BODY_BYTES = 1 << 30
#: The longest a Secret Token may be made to last (100 years).
MAX_EXPIRES_IN_DAYS = 36_500
#: The bounds of a tenant's rate limit (requests a second) and burst.
MIN_RATE_LIMIT, MAX_RATE_LIMIT = 0.01, 1_000_000
#: The most requests a tenant's trace may keep (``provisor.server.tenancy.MAX_TRACE``).
MAX_TRACE = 1000
#: ``serve``'s read and write timeouts (seconds) and their bounds, and the connections it serves at
#: once and their bound (``provisor.cli.coalescing.HEADER_TIMEOUT``, ``BODY_TIMEOUT``,
#: ``WRITE_TIMEOUT``, ``provisor.cli.serving.MAX_CONNECTIONS``: kept here so that the CLI starts
#: without uvicorn).
HEADER_TIMEOUT, BODY_TIMEOUT, WRITE_TIMEOUT = 10.0, 30.0, 30.0
#: ``serve``'s longest wait at a stop for the requests under way and the connections closing.
SHUTDOWN_TIMEOUT = 10.0
MIN_TIMEOUT, MAX_TIMEOUT = 0.1, 3600.0
MAX_CONNECTIONS, MAX_CONNECTIONS_LIMIT = 1000, 1_000_000
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
BUSY = "the database is busy: another process holds a write lock; try again"
DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: $PROVISOR_DB or sqlite:///provisor.db).")
]


def tenant_arg(name: str) -> str:
    """The tenant ``name`` as the last word of a command line this tool prints for the operator
    to run: shell-quoted, and after ``--`` when it starts with ``-`` (which would be read as an
    option: ``provisor token create -- -x``)."""
    quoted = shlex.quote(name)
    return f"-- {quoted}" if name.startswith("-") else quoted


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"provisor: {message}", err=True)
    raise typer.Exit(code)


#: How often a long command (a tenant's deletion, an extension's purge) says how far it is.
PROGRESS_SECONDS = 2.0
_Step = TypeVar("_Step")


def progress_on_stderr(describe: Callable[[_Step], str]) -> Callable[[_Step], None]:
    """A store's ``progress`` callback that prints ``describe(step)`` on standard error, at most
    every :data:`PROGRESS_SECONDS` (none for a command that ends sooner)."""
    shown = time.monotonic()

    def progress(step: _Step) -> None:
        nonlocal shown
        if (now := time.monotonic()) - shown >= PROGRESS_SECONDS:
            shown = now
            typer.echo(describe(step), err=True)

    return progress


@contextmanager
def terminated_as_interrupted() -> Iterator[list[int]]:
    """Within the block SIGTERM (systemd stopping a unit, ``timeout``) stops the command as Ctrl-C
    does, with KeyboardInterrupt, so that a long command says what it left; the list it yields
    holds the signal once one came (exit 143 rather than 130). Without it the process died
    without a word."""
    import signal

    came: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        came.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield came
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_status(came: list[int]) -> int:
    """The exit status of a command stopped by Ctrl-C (130), or by SIGTERM (143)."""
    return 143 if came else 130


def check_range(option: str, value: float, low: float, high: float) -> None:
    """A usage error (exit 2) unless ``low <= value <= high``."""
    if not low <= value <= high:
        fail(f"{option} must be between {low} and {high}, not {value}", 2)


def db_url(option: str | None) -> str:
    """``--db``, else ``$PROVISOR_DB``, else the default. An empty ``--db`` (``--db "$UNSET"``) is
    a usage error: it used to mean provisor.db in the current folder, made afresh if not there."""
    if option is not None and not option.strip():
        fail(
            "--db is empty: give a database URL such as sqlite:///provisor.db "
            "(or leave --db out for $PROVISOR_DB, else sqlite:///provisor.db)",
            2,
        )
    env = os.environ.get("PROVISOR_DB")
    if option is None and env is not None and not env.strip():
        fail(
            "$PROVISOR_DB is set but empty: give it a database URL such as sqlite:///provisor.db, "
            "or unset it for sqlite:///provisor.db",
            2,
        )
    return option or env or DEFAULT_DB


def database_problem(exc: BaseException, url: str | None = None) -> str:
    """One line for a database failure: a locked SQLite file, or the driver's first line; for
    SQLite's "unable to open database file" of ``url``, why, as far as the file system tells."""
    from provisor.store.sql.engine import is_locked  # here: the CLI starts without SQLAlchemy

    if is_locked(exc):
        return BUSY
    orig = getattr(exc, "orig", None)
    text = str(orig if isinstance(orig, BaseException) else exc).strip()
    text = _BACKGROUND.sub("", text.splitlines()[0]) if text else ""
    if text == "unable to open database file" and url is not None and (why := _unopenable(url)):
        text += f" ({why})"
    if text == "database disk image is malformed":
        text += "; restore the last backup (provisor backup makes them)"
    return text or type(exc).__name__


def _unopenable(url: str) -> str | None:
    """Why SQLite cannot open the file of ``url``: a directory, a missing folder, a folder or file
    this user may not write (SQLite keeps its -wal and -shm files beside the database)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database.startswith("file:"):
        return None
    path = Path(parsed.database)
    folder = path.parent
    if path.is_dir():
        return f"{path} is a directory; name a file in it, such as sqlite:///{path / 'provisor.db'}"
    if not folder.is_dir():
        return f"no such directory: {folder}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"this user may not write in {folder}, where SQLite keeps the database's -wal and -shm files"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"this user may not read and write {path}"
    return None


#: SQLAlchemy's link to its documentation, which ends its warnings' line.
_BACKGROUND = re.compile(r"\s*\(Background on this (?:error|warning) at: [^)]*\)")


def shown_url(url: str) -> str:
    """A database URL as messages may show it: its password masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(a URL that is not one)" if "@" in url else url


_Read = TypeVar("_Read")


def read_back(url: str | None, read: Callable[[Any], _Read]) -> _Read | None:
    """``read(store)`` on the store at ``url`` opened afresh, or None when that fails: for what to
    say after Ctrl-C stopped a command, which may have come before the command changed anything
    (while it waited for another writer's lock, say). A second failure must not hide the first."""
    from provisor.store.sql import SqlStore

    try:
        store = SqlStore(db_url(url))
    except Exception:
        return None
    try:
        return read(store)
    except Exception:
        return None
    finally:
        store.close()


def missing_sqlite_file(url: str) -> str | None:
    """The path of the file of SQLite URL ``url`` when no file is there; else None (another
    database, one in memory, or a URL that is not one, which opening it reports)."""
    path = _sqlite_file(url)
    return None if path is None or os.path.exists(path) else path


def empty_sqlite_file(url: str) -> str | None:
    """The path of the file of SQLite URL ``url`` when it is there and empty (0 bytes: a restore
    that went wrong, a file truncated); else None."""
    path = _sqlite_file(url)
    return path if path is not None and os.path.isfile(path) and os.path.getsize(path) == 0 else None


def _sqlite_file(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or path in (None, "", ":memory:") or path.startswith("file:"):
        return None
    return path


def integrity_summary(rows: list[str]) -> str:
    """What SQLite's ``integrity_check`` or ``quick_check`` said, in one line: its first three
    findings and how many more (each row may hold several lines; a damaged database has
    hundreds)."""
    said = [line for row in rows for line in row.splitlines() if not line.startswith("***")]
    more = f" (and {len(said) - 3} more)" if len(said) > 3 else ""
    return "; ".join(said[:3]) + more


def in_memory(url: str) -> bool:
    """Whether ``url`` is a SQLite database in memory (``sqlite://``, ``sqlite:///``,
    ``sqlite:///:memory:``), gone when the process ends."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


@contextmanager
def open_store(
    url: str | None, *, memory: bool = False, create: bool = False, upgrade: bool = False
) -> Iterator[Any]:
    """The store at ``url``; a store error or a database failure while it is used ends the command
    with one line on stderr and exit status 1. A database in memory is a usage error unless
    ``memory`` (the demo, whose server lives in the process): a tenant made in one would be gone,
    with its token, when the command ends. A SQLite file that is not there is made only for a
    command that may ``create`` one (``serve``, ``tenant create``, ``schema add``); any other ends
    with "no database at PATH", rather than making an empty database where a path was mistyped
    (on which ``doctor`` would find nothing wrong). A database at an older schema revision is
    upgraded only for a command that may ``upgrade`` it (``serve``, ``demo``, ``upgrade``); any
    other ends saying how to upgrade it, and leaves it as it is: a cron job's ``doctor`` after a
    package upgrade must not migrate a database that older servers are still running on."""
    from sqlalchemy.exc import SAWarning, SQLAlchemyError

    from provisor.store.base import StoreError, TenantDeleting
    from provisor.store.sql import SqlStore
    from provisor.store.sql.migrate import OutdatedDatabase

    url = db_url(url)
    if not memory and in_memory(url):
        fail(
            f"the database {url!r} is in memory, gone when the command ends: "
            "give a file, such as sqlite:///provisor.db",
            2,
        )
    missing = None if create else missing_sqlite_file(url)
    if missing is not None:
        fail(
            f"no database at {missing}: check --db (or $PROVISOR_DB); `provisor tenant create` "
            "or `provisor serve` makes a new one"
        )
    empty = None if create else empty_sqlite_file(url)
    if empty is not None:  # SQLite would take it as a new database, and this command make one of it
        fail(
            f"the database file {empty} is empty: check --db (or $PROVISOR_DB), or restore the last "
            "backup; `provisor tenant create` or `provisor serve` makes a new database of it"
        )
    try:
        with warnings.catch_warnings():
            # an option SQLite's driver does not take (?mode=ro without uri=true) would be ignored,
            # and the database opened for writing after all
            warnings.filterwarnings("error", "Query string argument", SAWarning)
            store = SqlStore(url, upgrade=upgrade)
    except OutdatedDatabase as exc:
        shown = shown_url(url)
        fail(
            f"the database {shown!r} is at schema revision {exc.current}, older than this Provisor's "
            f"{exc.head}; once no server of the older version runs on it, upgrade it with: "
            f"provisor upgrade --db {shlex.quote(shown)}"
        )
    except Exception as exc:  # a bad URL or an unreadable file: say so plainly
        fail(f"cannot open the database {shown_url(url)!r}: {database_problem(exc, url)}")
    try:
        yield store
    except TenantDeleting as exc:
        fail(f"{exc}; to finish a deletion that was stopped: provisor tenant delete {tenant_arg(exc.name)}")
    except StoreError as exc:
        fail(str(exc))
    except (SQLAlchemyError, sqlite3.Error) as exc:
        problem = database_problem(exc)
        fail(problem if problem == BUSY else f"database error: {problem}")
    finally:
        store.close()
