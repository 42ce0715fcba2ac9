"""The migration runner: each chain's declared head is the scripts' head, and reading a database's
revision agrees with alembic's own reading, at every revision of the chain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext

from provisor.store.sql.engine import create_store_engine
from provisor.store.sql.migrate import ENGINE_STATE, STORE, Chain, current_revision, script_head, upgrade


@pytest.mark.parametrize("chain", [STORE, ENGINE_STATE], ids=["store", "engine_state"])
def test_the_declared_head_is_the_newest_script(chain: Chain) -> None:
    """Adding a migration means raising ``Chain.head`` with it: a store at the old head would
    otherwise never be upgraded."""
    assert chain.head == script_head(chain)


@pytest.mark.parametrize("chain", [STORE, ENGINE_STATE], ids=["store", "engine_state"])
def test_the_revision_read_without_alembic_is_alembics(chain: Chain, tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        revisions = [None, *[s.revision for s in _scripts(chain)]]
        for revision in revisions:
            if revision is not None:
                with engine.begin() as conn:
                    cfg = chain.config()
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
            with engine.connect() as conn:
                alembics = MigrationContext.configure(
                    conn, opts={"version_table": chain.version_table}
                ).get_current_revision()
                assert current_revision(conn, chain) == alembics == revision
        upgrade(engine, chain)  # at head: a no-op
        with engine.connect() as conn:
            assert current_revision(conn, chain) == chain.head
    finally:
        engine.dispose()


def test_opening_a_store_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    """What every ``provisor`` command pays: a store at head reads its revision and goes on."""
    from provisor.store.sql import SqlStore

    url = f"sqlite:///{tmp_path / 's.db'}"
    SqlStore(url).close()  # creates and migrates it
    code = f"import sys\nfrom provisor.store.sql import SqlStore\nSqlStore({url!r}).close()\n"
    code += "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _scripts(chain: Chain) -> list:  # type: ignore[type-arg]
    from alembic.script import ScriptDirectory

    return list(reversed(list(ScriptDirectory.from_config(chain.config()).walk_revisions())))
