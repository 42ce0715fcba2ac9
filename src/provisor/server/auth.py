"""Secret Tokens: high-entropy bearer tokens, shown once, stored only as a SHA-256 hash.

A token is ``pvs_`` + 43 URL-safe characters (256 random bits). Because tokens carry full entropy a
fast hash is the right tool (no password stretching needed); the stored hash is looked up by index
and compared with :func:`hmac.compare_digest`. Tokens never appear in logs: only their short
public prefix (``pvs_abcd``) does.

A running server records when each token was last used (``provisor token list``), at most once
every :data:`USE_RECORD_SECONDS` a token, so an operator can tell whether Entra still connects
(and with which token) while the hot path stays a read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from provisor.scim.compat.credentials import TOKEN_PREFIX as TOKEN_PREFIX
from provisor.scim.compat.credentials import bearer_token
from provisor.scim.errors import Unauthorized
from provisor.store.base import StoreBusy, Tenant, TenantStore, TokenInfo

_CACHE_SIZE = 4096
#: A token's use is written to the store at most this often (its "last used" is that precise).
USE_RECORD_SECONDS = 60.0

log = logging.getLogger("provisor.server")

#: The one form of header a Secret Token comes in (RFC 6750 section 2.1).
_BEARER_FORM = "'Authorization: Bearer <Secret Token>'"
BEARER_HINT = f"use the Bearer scheme: {_BEARER_FORM}"


def _not_bearer(authorization: str) -> str:
    """Why an ``Authorization`` header names no Secret Token, as a client can act on it."""
    text = authorization.strip(" \t")
    scheme, form = text[:6].lower(), _BEARER_FORM
    if not text:
        return f"the Authorization header is empty; use the Bearer scheme: {form}"
    if scheme == "bearer" and len(text) == 6:
        return f"the Authorization header names the Bearer scheme but no Secret Token: {form}"
    if scheme == "bearer" and text[6] == "\t":
        return f"separate Bearer and the Secret Token with a space, not a tab: {form}"
    if scheme == "bearer" and text[6] == " ":
        return f"send one Secret Token after Bearer, nothing else: {form}"
    return BEARER_HINT


def generate_token() -> str:
    """A new Secret Token (256 bits of randomness)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def public_prefix(token: str) -> str:
    """The part of a token that may be shown in listings and logs."""
    return token[: len(TOKEN_PREFIX) + 4]


def issue_token(
    store: TenantStore, tenant_id: str, *, label: str = "", expires: datetime | None = None
) -> tuple[str, TokenInfo]:
    """Create a token for a tenant; returns the token (shown once) and its stored record."""
    token = generate_token()
    info = store.add_token(tenant_id, hash_token(token), public_prefix(token), label, expires)
    return token, info


class Authenticator:
    """Resolves ``Authorization: Bearer`` headers to tenants, with a short positive cache.

    The cache keeps the hot path off the database; ``ttl`` bounds how long a revoked token may
    still be honoured by a running server (default 1 s). With ``record_use`` each accepted token's
    use is written to the store (``touch_token``) when it was last written
    :data:`USE_RECORD_SECONDS` ago or more, or never by this process.
    """

    def __init__(
        self,
        store: TenantStore,
        *,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        record_use: bool = True,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[float, TokenInfo, Tenant]] = OrderedDict()
        self._record_use = record_use
        #: token id -> when its use is next written (clock time); an entry past due is the same
        #: as none, so those go every USE_RECORD_SECONDS (tokens revoked or no longer sent)
        self._use_due: dict[str, float] = {}
        self._use_sweep_due = clock() + USE_RECORD_SECONDS

    def identify(self, authorization: str | None) -> tuple[TokenInfo, Tenant, bool]:
        """The token and tenant of an ``Authorization: Bearer`` header, and whether the header
        was one of the variants ``bearer_scheme_variants`` tolerates (``Bearer Bearer <token>``, a
        bare token: ``compat.credentials``; the caller refuses it when the tenant's switch is off);
        Unauthorized unless the token is valid (known, not revoked, not expired). Its use is not
        recorded: a caller that checks more (the tenant's allowed networks) calls :meth:`accepted`
        once those pass."""
        if authorization is None:
            raise Unauthorized(f"missing Authorization header; {BEARER_HINT[0].lower()}{BEARER_HINT[1:]}")
        bearer = bearer_token(authorization)
        if bearer is None:
            raise Unauthorized(_not_bearer(authorization))
        token, variant = bearer
        digest = hash_token(token)
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            info, tenant = hit[1], hit[2]
        else:
            found = self._store.token_by_hash(digest)
            if found is None:
                raise Unauthorized("invalid Secret Token", invalid_token=True)
            info, tenant = found
            self._cache[digest] = (now + self._ttl, info, tenant)
            self._cache.move_to_end(digest)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        # The row was found through the hash index; the stored hash is still compared in constant
        # time, so no database collation or index quirk can ever match a different token.
        if not hmac.compare_digest(info.hash, digest) or info.revoked is not None:
            raise Unauthorized("invalid Secret Token", invalid_token=True)
        if info.expires is not None and info.expires <= datetime.now(UTC):
            raise Unauthorized("the Secret Token has expired", invalid_token=True)
        return info, tenant, variant

    def accepted(self, info: TokenInfo) -> None:
        """Record that a request with ``info`` was accepted, when due (at most once a minute)."""
        if self._record_use:
            now = self._clock()
            due = self._use_due.get(info.id)
            if due is None or due <= now:
                self._note_use(info, now)

    def _note_use(self, info: TokenInfo, now: float) -> None:
        """Write that ``info`` was used, without waiting for a database another writer holds (a
        read must not wait on it); a failure is logged and the request goes on: the next write
        is tried a minute later."""
        if now >= self._use_sweep_due:  # at most once a minute, off the requests between writes
            self._use_due = {k: due for k, due in self._use_due.items() if due > now}
            self._use_sweep_due = now + USE_RECORD_SECONDS
        self._use_due[info.id] = now + USE_RECORD_SECONDS
        try:
            self._store.touch_token(info.id, datetime.now(UTC), wait=False)
        except StoreBusy:
            log.warning(
                "could not record the use of token %s (%s): the database is busy", info.id, info.prefix
            )
        except Exception:
            log.warning("could not record the use of token %s (%s)", info.id, info.prefix, exc_info=True)
