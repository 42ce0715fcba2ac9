"""``provisor backup FILE``: a consistent, checked copy of a live SQLite database, never a torn
one, never a migrated source, and one-line refusals for what it cannot do."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest
from tests.cli.test_cli_bad_input import assert_refused, cli
from tests.conftest import make_user, serving

from provisor.store.sql import SqlStore


def revision(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def test_a_backup_taken_while_a_server_writes_is_whole_and_consistent(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    copy = tmp_path / "copy.db"
    with serving(f"sqlite:///{db}") as live:
        _, token = live.new_tenant()
        stop = threading.Event()
        made: list[str] = []

        def write() -> None:
            with live.client(token) as client:
                while not stop.is_set():
                    r = client.post("/Users", json=make_user(f"u{len(made)}@x.com"))
                    assert r.status_code == 201, r.text
                    made.append(r.json()["id"])

        writer = threading.Thread(target=write)
        writer.start()
        try:
            deadline = time.monotonic() + 60
            while len(made) < 50:  # the server is busy writing when the copy is taken
                # a writer that failed would leave this waiting for good
                assert writer.is_alive() and time.monotonic() < deadline, "the writes stopped"
                stop.wait(0.01)
            result = cli("backup", str(copy), "--db", f"sqlite:///{db}")
            during = len(made)
        finally:
            stop.set()
            writer.join()
    assert result.exit_code == 0, result.stderr
    assert f"Backed up {db} to {copy}: " in result.stdout and "schema " in result.stdout
    assert not (tmp_path / "copy.db.part").exists()
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    backup = SqlStore(f"sqlite:///{copy}")
    try:
        (tenant,) = [t for t in backup.list_tenants() if t.name.startswith("t-")]
        held = backup.count_resources(tenant.id).get("User", 0)
        from provisor.store.base import Query

        page = backup.search(tenant.id, "User", Query(count=10_000))
        # one moment of the database: the kept count agrees with the rows, every user is whole
        assert page.total == held == len(page.resources)
        assert 50 <= held <= during + 1 and {r.id for r in page.resources} <= set(made)
        assert all(r.data["userName"].endswith("@x.com") for r in page.resources)
    finally:
        backup.close()


def test_backup_never_migrates_the_database_it_copies(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    SqlStore(f"sqlite:///{db}").close()
    head = revision(db)
    with sqlite3.connect(db) as conn:  # as a Provisor one schema version older left it
        conn.execute("UPDATE alembic_version SET version_num = '0007'")
    result = cli("backup", str(tmp_path / "copy.db"), "--db", f"sqlite:///{db}")
    assert result.exit_code == 0, result.stderr
    assert "schema 0007" in result.stdout
    assert revision(db) == "0007" != head  # the source was read, not opened as a store
    assert revision(tmp_path / "copy.db") == "0007"


def test_an_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    SqlStore(f"sqlite:///{db}").close()
    target = tmp_path / "nightly.db"
    target.write_bytes(b"yesterday's backup")
    assert_refused(cli("backup", str(target), "--db", f"sqlite:///{db}"), 1, "exists", "--overwrite")
    assert target.read_bytes() == b"yesterday's backup"
    result = cli("backup", str(target), "--db", f"sqlite:///{db}", "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert revision(target) == revision(db)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql://x/y", "pg_dump"),
        ("sqlite://", "in-memory"),
        ("not a url", "not a database URL"),
        ("sqlite:///{tmp}/missing.db", "no database at"),
        ("sqlite:///{tmp}/d.db", "is the database or one of its files"),
    ],
)
def test_what_backup_cannot_do_is_refused_in_one_line(tmp_path: Path, url: str, needle: str) -> None:
    db = tmp_path / "d.db"
    SqlStore(f"sqlite:///{db}").close()
    before = db.read_bytes()
    target = str(db) if "its files" in needle else str(tmp_path / "out.db")
    args = ["backup", target, "--db", url.format(tmp=tmp_path)]
    if "its files" in needle:
        args.append("--overwrite")
    assert_refused(cli(*args), 1, needle)
    assert db.read_bytes() == before
    assert not (tmp_path / "out.db").exists()


def test_a_target_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    SqlStore(f"sqlite:///{db}").close()
    assert_refused(
        cli("backup", str(tmp_path / "no" / "x.db"), "--db", f"sqlite:///{db}"), 1, "no such directory"
    )


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_empty_name_or_a_directory_as_file_is_refused_saying_so(
    tmp_path: Path, overwrite: list[str]
) -> None:
    """An empty FILE was the current folder, which "exists"; a directory with --overwrite gave
    "[Errno 21] Is a directory: '...part' -> '...'" after the whole copy was made."""
    db = tmp_path / "d.db"
    SqlStore(f"sqlite:///{db}").close()
    (tmp_path / "folder").mkdir()
    url = f"sqlite:///{db}"
    assert_refused(cli("backup", "", "--db", url, *overwrite), 2, "the backup file name is empty")
    folder = str(tmp_path / "folder")
    assert_refused(cli("backup", folder, "--db", url, *overwrite), 1, f"{folder} is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.db", "folder"]
    assert list((tmp_path / "folder").iterdir()) == []


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="/sys is where no file can be made")
def test_a_folder_the_copy_cannot_be_written_in_is_named(tmp_path: Path) -> None:
    """It was "backup of <the database> failed: unable to open database file", as if of the source."""
    db = tmp_path / "d.db"
    SqlStore(f"sqlite:///{db}").close()
    result = cli("backup", "/sys/provisor-backup.db", "--db", f"sqlite:///{db}")
    assert_refused(result, 1, "cannot write the copy in /sys: ")
    assert str(db) not in result.stderr


def test_a_copy_that_fails_its_check_never_takes_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import provisor.cli.backup as backup

    db = tmp_path / "d.db"
    SqlStore(f"sqlite:///{db}").close()

    def torn(source: Path, target: Path) -> backup.Summary:
        target.write_bytes(b"half a database")
        raise backup.BackupInvalid("*** in database main *** Page 7: btreeInitPage() returns error code 11")

    monkeypatch.setattr(backup, "copy_database", torn)
    assert_refused(cli("backup", str(tmp_path / "out.db"), "--db", f"sqlite:///{db}"), 1, "failed its check")
    assert not (tmp_path / "out.db").exists() and not (tmp_path / "out.db.part").exists()


def test_a_backup_of_a_closed_database_leaves_nothing_beside_it(tmp_path: Path) -> None:
    db = tmp_path / "closed.db"
    SqlStore(f"sqlite:///{db}").close()
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("backup", str(tmp_path / "copy.db"), "--db", f"sqlite:///{db}")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "copy.db"])


def test_overwrite_removes_the_old_copys_log(tmp_path: Path) -> None:
    """A FILE-wal of an earlier copy someone opened must not be replayed into the new copy."""
    db = tmp_path / "d.db"
    with SqlStore(f"sqlite:///{db}") as store:
        store.create_tenant("new-one")
    target = tmp_path / "nightly.db"
    stale = tmp_path / "nightly.db-wal"
    stale.write_bytes(b"log pages of an older database")
    result = cli("backup", str(target), "--db", f"sqlite:///{db}", "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert not stale.exists()
    with sqlite3.connect(target) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM tenants")] == ["new-one"]
    conn.close()


def test_an_interrupted_backup_leaves_no_half_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import provisor.cli.backup as backup

    db = tmp_path / "d.db"
    SqlStore(f"sqlite:///{db}").close()

    def interrupted(source: Path, target: Path) -> backup.Summary:
        target.write_bytes(b"half a database")
        raise KeyboardInterrupt

    monkeypatch.setattr(backup, "copy_database", interrupted)
    result = cli("backup", str(tmp_path / "out.db"), "--db", f"sqlite:///{db}")
    assert result.exit_code != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.db"]


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_the_databases_own_files_are_never_the_target_even_with_overwrite(
    tmp_path: Path, suffix: str
) -> None:
    """A copy renamed over the live database's write-ahead log lost every write in it and left
    the running server answering 500."""
    db = tmp_path / "d.db"
    url = f"sqlite:///{db}"
    with serving(url) as live:
        _, token = live.new_tenant()
        with live.client(token) as client:
            assert client.post("/Users", json=make_user("kept@x.com")).status_code == 201
            name = str(db) + suffix
            wal = db.with_name(db.name + "-wal").read_bytes() if suffix == "-wal" else None
            assert_refused(
                cli("backup", name, "--db", url, "--overwrite"), 1, "is the database or one of its files"
            )
            if wal is not None:
                assert db.with_name(db.name + "-wal").read_bytes() == wal
            r = client.get("/Users", params={"filter": 'userName eq "kept@x.com"'})
            assert r.status_code == 200 and r.json()["totalResults"] == 1


def made_database(tmp_path: Path) -> Path:
    """A new, empty Provisor database ``d.db`` in ``tmp_path``."""
    db = tmp_path / "d.db"
    SqlStore(f"sqlite:///{db}").close()
    return db


def test_a_link_to_the_database_is_refused_and_other_links_are_not_replaced(tmp_path: Path) -> None:
    db = made_database(tmp_path)
    to_db = tmp_path / "to-db.db"
    to_db.symlink_to(db)
    assert_refused(cli("backup", str(to_db), "--db", f"sqlite:///{db}", "--overwrite"), 1, "one of its files")
    keep = tmp_path / "keep.txt"
    keep.write_text("keep")
    link = tmp_path / "link.db"
    link.symlink_to(keep)
    assert_refused(cli("backup", str(link), "--db", f"sqlite:///{db}", "--overwrite"), 1, "a symbolic link")
    assert link.is_symlink() and keep.read_text() == "keep"


def test_a_named_pipe_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    db = made_database(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert_refused(cli("backup", str(fifo), "--db", f"sqlite:///{db}", "--overwrite"), 1, "a named pipe")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_the_copy_is_readable_by_its_owner_alone(tmp_path: Path) -> None:
    db = made_database(tmp_path)
    db.chmod(0o644)
    old = os.umask(0o022)
    try:
        result = cli("backup", str(tmp_path / "copy.db"), "--db", f"sqlite:///{db}")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "copy.db").stat().st_mode) == 0o600
