"""`pip install .` installs everything the server needs: every file under src/provisor that is not
a module of a package (schemas, migrations, templates) is declared as package data.

The test command installs the project in editable mode, where files missing from the package
data are still found in the source tree; this holds the declaration itself, which a wheel follows.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "provisor"


def _declared() -> set[str]:
    """The files the package-data globs select, as setuptools reads them (``*`` stays in its folder)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["provisor"]
    return {path.relative_to(PACKAGE).as_posix() for g in globs for path in PACKAGE.glob(g)}


def _shipped_only_as_data() -> list[str]:
    """Paths (relative to the package) that setuptools' package discovery does not pick up: files
    that are not Python, and Python files in folders without ``__init__.py`` (alembic versions)."""
    out: list[str] = []
    for path in PACKAGE.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        is_module = path.suffix == ".py" and (path.parent / "__init__.py").is_file()
        if not is_module:
            out.append(path.relative_to(PACKAGE).as_posix())
    return sorted(out)


def test_every_data_file_is_declared_as_package_data() -> None:
    declared = _declared()
    files = _shipped_only_as_data()
    assert "scim/schema/data/user.json" in files  # the walk sees the data it must see
    missing = [f for f in files if f not in declared]
    assert not missing, f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_every_migration_is_shipped() -> None:
    declared = _declared()
    for folder in ("store/sql/migrations/versions", "store/sql/engine_migrations/versions"):
        revisions = sorted((PACKAGE / folder).glob("*.py"))
        assert revisions, folder
        for path in revisions:
            assert path.relative_to(PACKAGE).as_posix() in declared, path
