"""SqlStore on a SQLite file passes the store contract (provisor.store.testing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provisor.store.sql import SqlStore
from provisor.store.testing import ResourceStoreContract, TenantStoreContract


class TestSqlStoreContract(ResourceStoreContract, TenantStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlStore]:  # type: ignore[override]
        s = SqlStore(f"sqlite:///{tmp_path / 'contract.db'}")
        yield s
        s.close()
