"""The Authenticator: Bearer tokens resolved to tenants, and each token's last use recorded at
most once a minute (``provisor token list``), never at the cost of a request."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provisor.scim.errors import Unauthorized
from provisor.server.auth import USE_RECORD_SECONDS, Authenticator, issue_token
from provisor.store.base import StoreBusy, Tenant
from provisor.store.sql import SqlStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(SqlStore):
    """A SqlStore that counts (and can fail) ``touch_token``."""

    touches = 0
    fail: Exception | None = None
    waits: list[bool]

    def touch_token(self, token_id: str, when: datetime, *, wait: bool = True) -> None:
        self.touches += 1
        self.__dict__.setdefault("waits", []).append(wait)
        if self.fail is not None:
            raise self.fail
        super().touch_token(token_id, when, wait=wait)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    s = CountingStore(f"sqlite:///{tmp_path / 'auth.db'}")
    yield s
    s.close()


def authenticate(auth: Authenticator, header: str) -> Tenant:
    """What the server does with a request's Authorization header: identify the token, and (its
    other checks passed) record that it was accepted."""
    info, tenant, _ = auth.identify(header)
    auth.accepted(info)
    return tenant


def last_used(store: SqlStore, tenant_id: str) -> datetime | None:
    (info,) = store.list_tokens(tenant_id)
    return info.last_used


def test_a_tokens_use_is_recorded_at_most_once_a_minute(store: CountingStore) -> None:
    tenant = store.create_tenant("acme")
    token, _ = issue_token(store, tenant.id)
    clock = Clock()
    auth = Authenticator(store, clock=clock)
    assert last_used(store, tenant.id) is None
    before = datetime.now(UTC)
    assert authenticate(auth, f"Bearer {token}").id == tenant.id
    first = last_used(store, tenant.id)
    assert first is not None and before - timedelta(seconds=1) <= first <= datetime.now(UTC)
    for step in (1, 10, USE_RECORD_SECONDS - 12):  # within the minute: no write
        clock.now += step
        authenticate(auth, f"Bearer {token}")
    assert store.touches == 1 and last_used(store, tenant.id) == first
    clock.now += 1
    authenticate(auth, f"Bearer {token}")
    assert store.touches == 2 and last_used(store, tenant.id) >= first  # type: ignore[operator]
    assert store.waits == [False, False]  # a request never waits for the write lock to record it


def test_the_use_record_forgets_tokens_no_longer_sent(store: CountingStore) -> None:
    """Each accepted token has an entry saying when its use is next written; one past due is the
    same as none, so those of tokens no longer sent (revoked, replaced) go once a minute."""
    tenant = store.create_tenant("acme")
    tokens = [issue_token(store, tenant.id)[0] for _ in range(5)]
    clock = Clock()
    auth = Authenticator(store, clock=clock)
    for token in tokens:
        authenticate(auth, f"Bearer {token}")
    assert len(auth._use_due) == 5 and store.touches == 5
    clock.now += USE_RECORD_SECONDS
    authenticate(auth, f"Bearer {tokens[0]}")  # due: written, and the others' entries go
    assert len(auth._use_due) == 1 and store.touches == 6
    authenticate(auth, f"Bearer {tokens[1]}")  # an entry gone is due at once, as before
    assert len(auth._use_due) == 2 and store.touches == 7
    clock.now += 1
    authenticate(auth, f"Bearer {tokens[1]}")  # and then a minute away again
    assert store.touches == 7


def test_refused_tokens_record_nothing(store: CountingStore) -> None:
    tenant = store.create_tenant("acme")
    token, info = issue_token(store, tenant.id)
    auth = Authenticator(store)
    store.revoke_token(info.id)
    with pytest.raises(Unauthorized):
        authenticate(auth, f"Bearer {token}")
    with pytest.raises(Unauthorized):
        authenticate(auth, "Bearer pvs_not-a-token")
    assert store.touches == 0 and last_used(store, tenant.id) is None


@pytest.mark.parametrize(
    ("failure", "traceback"),
    [(StoreBusy("the database is busy"), False), (RuntimeError("disk I/O error"), True)],
)
def test_a_failed_record_is_logged_and_the_request_goes_on(
    store: CountingStore, caplog: pytest.LogCaptureFixture, failure: Exception, traceback: bool
) -> None:
    tenant = store.create_tenant("acme")
    token, info = issue_token(store, tenant.id)
    clock = Clock()
    auth = Authenticator(store, clock=clock)
    store.fail = failure
    with caplog.at_level(logging.WARNING, logger="provisor.server"):
        assert authenticate(auth, f"Bearer {token}").id == tenant.id
    assert f"could not record the use of token {info.id}" in caplog.text
    assert ("Traceback" in caplog.text) is traceback  # busy is expected; anything else is shown whole
    assert token not in caplog.text  # the prefix is named, never the token
    clock.now += 5
    authenticate(auth, f"Bearer {token}")  # not retried at once: the database is left alone
    assert store.touches == 1
    store.fail = None
    clock.now += USE_RECORD_SECONDS
    authenticate(auth, f"Bearer {token}")
    assert store.touches == 2 and last_used(store, tenant.id) is not None


def test_recording_can_be_switched_off(store: CountingStore) -> None:
    tenant = store.create_tenant("acme")
    token, _ = issue_token(store, tenant.id)
    auth = Authenticator(store, record_use=False)
    authenticate(auth, f"Bearer {token}")
    assert store.touches == 0 and last_used(store, tenant.id) is None
