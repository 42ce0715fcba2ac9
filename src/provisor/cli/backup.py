"""``provisor backup FILE``: a consistent copy of a SQLite database, taken while servers run.

Copying a live SQLite file with ``cp`` can catch it between a write to the database and one to its
write-ahead log, and leave a copy that is torn or lacks the last commits. This command reads the
database through SQLite's online backup API inside one read transaction: the copy is the database
as of one moment, writers go on meanwhile (WAL: a reader never blocks them), and the copy is
checked (``PRAGMA integrity_check``) before it takes FILE's name, so FILE is either a whole,
checked backup or untouched.

The database is only read, and never migrated: a newer Provisor can back up an older database
before it first opens it. Run it as the user the servers run as (SQLite's ``-wal`` and ``-shm``
files beside the database are shared with them). To restore, stop the servers and put the copy in the
database's place (and remove the old ``-wal`` and ``-shm`` files beside it). The copy is readable
by its owner alone (mode 0600): it holds what the database holds.
"""

import os
import sqlite3
import stat
from pathlib import Path
from typing import Annotated

import typer

from provisor.cli.common import DbOption, db_url, fail, integrity_summary


def register(app: typer.Typer) -> None:
    """Add ``backup`` to ``app`` (the ``provisor`` CLI of ``cli.main``)."""

    @app.command("backup")
    def backup(
        file: Annotated[str, typer.Argument(help="Where to write the copy (a new file).")],
        db: DbOption = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace FILE if it exists.")] = False,
    ) -> None:
        """Copy a SQLite database consistently while servers use it; prints what was copied."""
        if not file.strip():  # Path("") is the current folder, which "exists"
            fail("the backup file name is empty: give a new file to write the copy to", 2)
        if file == "-":  # not standard output: a copy is checked as a file before it is handed over
            fail(
                "backup writes a file, not standard output: give the file's name (./- for a file called -)", 2
            )
        source = sqlite_path(db_url(db))
        target = Path(file)
        if target.is_dir():
            fail(f"{file} is a directory: give a file to write the copy to, such as {target / 'provisor.db'}")
        part = target.with_name(target.name + ".part")
        live = _database_files(source)
        for written in (target, *_sidecars(target), part, *_sidecars(part)):
            if written.resolve() in live:  # the backup writes or removes each of these (or links to them)
                fail(f"{file} is the database or one of its files ({written.name}): give another name")
        kind = _not_regular(target)
        if kind is not None:
            fail(f"{file} is {kind}: a backup replaces only a regular file; give a new file's name")
        if target.exists() and not overwrite:
            fail(f"{file} exists: give a new name, or --overwrite")
        if not target.parent.is_dir():
            fail(f"no such directory: {target.parent}")
        try:  # SQLite would only say "unable to open database file", as if of the source
            part.open("wb").close()
        except OSError as exc:
            fail(f"cannot write the copy in {target.parent}: {exc.strerror or exc}")
        try:
            summary = copy_database(source, part)
            for leftover in _sidecars(target):  # an old FILE's log must never meet the new FILE
                leftover.unlink(missing_ok=True)
            os.replace(part, target)
        except (sqlite3.Error, OSError) as exc:
            _remove(part)
            fail(f"backup of {source} failed: {exc}")
        except BackupInvalid as exc:
            _remove(part)
            fail(f"backup of {source} failed its check: {exc}")
        except BaseException:  # Ctrl-C, say: no half copy is left behind
            _remove(part)
            raise
        size = target.stat().st_size
        tenants = f"{summary.tenants} tenant" + ("" if summary.tenants == 1 else "s")
        typer.echo(
            f"Backed up {source} to {target}: {size / 1_048_576:.1f} MiB, schema {summary.revision}, "
            f"{tenants}, {summary.resources} users and groups."
        )


class BackupInvalid(Exception):
    """The copy did not pass ``PRAGMA integrity_check``."""


class Summary:
    def __init__(self, revision: str, tenants: int, resources: int) -> None:
        self.revision = revision
        self.tenants = tenants
        self.resources = resources


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///PATH`` URL; anything else ends the command with one line."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        fail(f"not a database URL: {url!r}")
    if parsed.get_backend_name() != "sqlite":
        fail(f"backup copies SQLite databases; {parsed.get_backend_name()} has its own tools (pg_dump)")
    if not parsed.database or parsed.database == ":memory:":
        fail("an in-memory database has nothing to back up")
    path = Path(parsed.database)
    if not path.is_file():
        fail(f"no database at {path}")
    return path


def _database_files(path: Path) -> set[Path]:
    """The database at ``path`` and the files SQLite keeps beside it, resolved."""
    return {p.resolve() for p in (path, *_sidecars(path), path.with_name(path.name + "-journal"))}


def _not_regular(path: Path) -> str | None:
    """What ``path`` is when it exists and is no regular file (a symbolic link is not followed:
    renaming the copy over it would replace the link, not what it points to); else None."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _sidecars(path: Path) -> list[Path]:
    """The write-ahead log and shared-memory files SQLite keeps beside ``path``."""
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]


def _remove(path: Path) -> None:
    for each in (path, *_sidecars(path)):
        each.unlink(missing_ok=True)


def copy_database(source: Path, target: Path) -> Summary:
    """Copy ``source`` to ``target`` in one read transaction, check the copy, and count it.

    The source is opened for reading and writing (``mode=rw``: never created), though only read:
    a read-only connection to a database in WAL mode that no server has open would leave the
    ``-wal`` and ``-shm`` files it needs behind, owned by whoever ran the backup; a read-write one
    that closes last removes them, as every SQLite connection does.
    """
    _remove(target)
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        # the copy holds what the database holds (token hashes, people's data, request traces):
        # readable by its owner alone, whatever the umask, from its first byte
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # every page in one step: one snapshot, however busy the writers
            check = [row[0] for row in dst.execute("PRAGMA integrity_check")]
            if check != ["ok"]:
                raise BackupInvalid(integrity_summary(check))
            return Summary(
                _one(dst, "SELECT version_num FROM alembic_version", "none"),
                int(_one(dst, "SELECT count(*) FROM tenants", 0)),
                int(_one(dst, "SELECT count(*) FROM resources", 0)),
            )
        finally:
            dst.close()
    finally:
        src.close()


def _one(conn: sqlite3.Connection, sql: str, default: object) -> str:
    """The first column of the first row, or ``default`` when the table is not there (a database
    that is not Provisor's is still copied)."""
    try:
        row = conn.execute(sql).fetchone()
    except sqlite3.OperationalError:
        return str(default)
    return str(row[0]) if row else str(default)
