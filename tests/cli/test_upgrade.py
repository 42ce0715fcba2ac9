"""Upgrading a database is a step an operator takes (``provisor upgrade``, or ``provisor serve``
of the new version), never the side effect of a command that lists or checks something: a cron
job's ``doctor`` after a package upgrade migrated a database that servers of the older version
were still writing to (``store/sql/migrate.py``, ``cli/common.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.cli.test_cli_bad_input import assert_refused, cli

from provisor.store.sql.migrate import STORE, head_revision

OLD = "0009"


def old_database(path: Path) -> str:
    """A database as Provisor at schema ``OLD`` made it (the migrations' own tests keep data
    across them: tests/store/test_sql_resources.py)."""
    from alembic import command

    from provisor.store.sql.engine import create_store_engine

    url = f"sqlite:///{path}"
    engine = create_store_engine(url)
    cfg = STORE.config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, OLD)
    engine.dispose()
    return url


def revision(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


@pytest.mark.parametrize(
    "command",
    [
        ("doctor",),
        ("tenant", "list"),
        ("tenant", "show", "acme"),
        ("token", "list", "acme"),
        ("tenant", "create", "beta"),
        ("token", "create", "acme"),
        ("schema", "list"),
    ],
)
def test_a_command_leaves_an_older_database_as_it_is_and_says_how_to_upgrade_it(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    db = tmp_path / "old.db"
    url = old_database(db)
    result = cli(*command, "--db", url)
    assert_refused(result, 1, f"at schema revision {OLD}", f"older than this Provisor's {head_revision()}")
    assert f"provisor upgrade --db {url}" in result.stderr
    assert revision(db) == OLD


def test_upgrade_upgrades_an_older_database_and_then_has_nothing_to_do(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    url = old_database(db)
    result = cli("upgrade", "--db", url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"Upgraded the database from schema {OLD} to {head_revision()}."
    assert revision(db) == head_revision()
    made = cli("tenant", "create", "acme", "--db", url)
    assert made.exit_code == 0, made.stderr
    again = cli("upgrade", "--db", url)
    assert again.exit_code == 0 and "nothing to upgrade" in again.stdout


def test_upgrade_refuses_what_it_cannot_upgrade(tmp_path: Path) -> None:
    assert_refused(cli("upgrade", "--db", f"sqlite:///{tmp_path / 'none.db'}"), 1, "no database at")
    assert not (tmp_path / "none.db").exists()
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    assert_refused(cli("upgrade", "--db", f"sqlite:///{foreign}"), 1, "not a Provisor database")


def test_a_new_database_is_still_made_by_the_commands_that_make_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = cli("tenant", "create", "acme", "--db", url)
    assert result.exit_code == 0, result.stderr
    assert revision(tmp_path / "new.db") == head_revision()


def test_serve_upgrades_an_older_database(tmp_path: Path) -> None:
    """As before: the new version's server is what upgrades a database in a rolling upgrade."""
    from provisor.store.sql import SqlStore

    db = tmp_path / "old.db"
    url = old_database(db)
    with pytest.raises(Exception, match="older than this Provisor"):
        SqlStore(url, upgrade=False)
    SqlStore(url).close()  # serve opens it so (open_store(..., upgrade=True))
    assert revision(db) == head_revision()
