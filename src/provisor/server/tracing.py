"""Request traces: what a tenant's client sent and what it was answered, for integrators.

A tenant with the setting ``trace`` (``provisor tenant set NAME --trace N``) has its last N
requests kept with their answers; ``provisor tenant trace NAME`` prints them. It is the way to see
the exact PATCH an Entra cycle sent. Off by default, for three reasons: every traced request is
one more write, bodies hold personal data, and a trace is only useful while an integration is
being built or debugged.

What is kept: the method, the path with its query string, the status, and both bodies as JSON
text, each cut at :data:`MAX_TRACED_BODY` characters. What never is: any header (the Secret Token
travels in one), a body that is not JSON (only its size is kept: the secrets in it could not be
found to redact), and any ``password`` value (RFC 7643 section 4.1.1; Okta can send one on
create). A password is found by what a name resolves to, not by its spelling, at any depth of a
body (so in a resource, a PATCH value object, and the ``data`` of each Bulk operation alike):

- a key any of whose parts, split at ``:`` and ``.`` and without a value filter, is ``password``
  in any case (``password``, ``urn:...:User:password``, ``urn:...:User.password``): its value;
- the ``value`` of a PATCH operation whose ``path`` resolves to it the same way
  (``password``, ``password[value pr]``, ``urn:...:User:password``);
- a filter that mentions ``password`` anywhere (a ``filter`` query parameter, the ``filter`` of a
  SearchRequest body, the value filter of a PATCH path), and a PATCH path that filters the values
  of ``password`` (``password[value eq "guess"]``): all of it, as its literals cannot be told
  apart reliably in a filter the server may have refused;
- and the strings so redacted from a request, wherever its answer repeats them (an error detail
  quoting the value).

A name that merely contains the word (``passwordHint``) is kept.

Credentials are never kept either, though no header is: a query parameter named as one
(``access_token``, ``token``, ``api_key``, ...: a client that sends its Secret Token in the URL),
and any Provisor Secret Token (``pvs_...``) in the query string or in a body's strings and names.
Objects and arrays nested deeper than :data:`MAX_TRACED_DEPTH` are not kept (a note says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from provisor.scim.compat.credentials import REDACTED, TOKEN_PREFIX, TOKEN_TEXT
from provisor.server.http import unquote_query

#: The most characters of each body a trace keeps.
MAX_TRACED_BODY = 64 * 1024
#: The deepest a trace keeps a body's objects and arrays; what is nested deeper (a body may nest
#: 1,024 levels, more than Python's recursion takes) is kept as :data:`_TOO_DEEP`.
MAX_TRACED_DEPTH = 64
_TOO_DEEP = f"(nested deeper than {MAX_TRACED_DEPTH} levels; not kept)"
#: :data:`REDACTED` as it is kept in a query string.
_REDACTED_QUERY = "%5Bredacted%5D"
#: Attribute names whose values never reach a trace (RFC 7643 section 4.1.1: ``password`` is
#: writeOnly and returned never; no other attribute of the schemas is).
SECRET_NAMES = frozenset({"password"})
#: A redacted string shorter than this is not looked for in the answer (it would blank out
#: ordinary words of it).
_MIN_ECHOED = 4
#: Query parameters that carry a credential when a client puts one in the URL.
CREDENTIAL_PARAMETERS = frozenset(
    {
        "access_token",
        "token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "client_secret",
        "password",
        "auth",
        "authorization",
        "bearer",
    }
)
_VALUE_FILTER = re.compile(r"\[[^\]]*\]?")
_NAME_PARTS = re.compile(r"[:.]")
#: A filter's quoted literals, and the bare word after a comparison (Entra's unquoted values, Q11).
_LITERALS = re.compile(
    r'"((?:[^"\\]|\\.)*)"|\b(?:eq|ne|co|sw|ew|gt|ge|lt|le)\s+([^\s()\[\]"]+)', re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Traced:
    """One exchange as a trace keeps it."""

    target: str
    request: str | None
    response: str | None


def traced(path: str, query: bytes, request: bytes | None, response: bytes | None) -> Traced:
    """The request ``path`` with its raw ``query`` string, and both bodies, as a trace keeps them:
    secrets redacted (the module's docstring says which), bodies cut at the limit."""
    secrets: set[str] = set()
    # a token put in the path (a Tenant URL with the Secret Token pasted onto it) is kept out too
    path = _without_tokens(path, secrets) if TOKEN_PREFIX in path else path
    target = path + ("?" + _traced_query(query.decode("latin-1"), secrets) if query else "")
    request_text = _traced(request, secrets)
    echoed = sorted((s for s in secrets if len(s) >= _MIN_ECHOED), key=len, reverse=True)
    return Traced(target, request_text, _traced(response, set(), echoed))


def traced_body(raw: bytes | None) -> str | None:
    """``raw`` as a trace keeps it: None when empty, secrets redacted, cut at the limit."""
    return _traced(raw, set())


def _traced(raw: bytes | None, secrets: set[str], echoed: list[str] | None = None) -> str | None:
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return f"({len(raw)} bytes that are not JSON; not kept, as a secret in them could not be redacted)"
    kept = _redacted(data, secrets)
    if echoed:
        kept = _scrubbed(kept, echoed)
    text = orjson.dumps(kept).decode()
    if len(text) > MAX_TRACED_BODY:
        return f"{text[:MAX_TRACED_BODY]}… (cut: {len(text)} characters in all)"
    return text


def names_a_secret(name: str) -> bool:
    """Whether the attribute name or PATCH path ``name`` resolves to a secret attribute: any of its
    parts (split at ``:`` and ``.``, value filters left out) is one, in any case."""
    bare = _VALUE_FILTER.sub("", name.lower())
    return any(part.strip() in SECRET_NAMES for part in _NAME_PARTS.split(bare))


def mentions_a_secret(text: str) -> bool:
    """Whether a filter (or any text) mentions a secret attribute anywhere."""
    low = text.lower()
    return any(name in low for name in SECRET_NAMES)


def _redacted(value: Any, secrets: set[str], depth: int = 0) -> Any:
    if depth > MAX_TRACED_DEPTH and isinstance(value, dict | list):
        return _TOO_DEEP
    if isinstance(value, dict):
        out = {}
        paths = _patch_paths(value)
        secret_value = any(names_a_secret(path) for path in paths)
        # a path whose value filter mentions a secret, or compares a secret attribute's values
        # with a literal (``password[value eq "guess"]``): its literals are secrets too
        secret_path = any(
            (filters := "".join(_VALUE_FILTER.findall(path)))
            and (
                mentions_a_secret(filters) or (names_a_secret(path) and _LITERALS.search(filters) is not None)
            )
            for path in paths
        )
        for key, item in value.items():
            low = key.lower()
            if TOKEN_PREFIX in key:  # a Secret Token sent as a member's name
                key = _without_tokens(key, secrets)
            if (
                names_a_secret(low)
                or ((secret_value or secret_path) and low == "value")
                or (secret_path and low == "path")
                or (low == "filter" and isinstance(item, str) and mentions_a_secret(item))
            ):
                out[key] = REDACTED
                _collect(item, secrets)
            else:
                out[key] = _redacted(item, secrets, depth + 1)
        return out
    if isinstance(value, list):
        return [_redacted(item, secrets, depth + 1) for item in value]
    if isinstance(value, str) and TOKEN_PREFIX in value:
        return _without_tokens(value, secrets)
    return value


def _without_tokens(text: str, secrets: set[str]) -> str:
    """``text`` with every Provisor Secret Token in it redacted (and remembered in ``secrets``)."""
    found = TOKEN_TEXT.findall(text)
    secrets.update(found)
    return TOKEN_TEXT.sub(REDACTED, text) if found else text


def _patch_paths(operation: dict[str, Any]) -> list[str]:
    """Every ``path`` of what may be a PATCH operation, the key in any case: the parser takes the
    last of several (``path`` and ``Path``), so a secret named by any of them redacts the value."""
    return [v for k, v in operation.items() if isinstance(v, str) and k.lower() == "path"]


def _collect(value: Any, secrets: set[str], depth: int = 0) -> None:
    """Remember the scalars of a redacted ``value`` (and a redacted filter's literals), to keep
    them out of the answer too."""
    if depth > MAX_TRACED_DEPTH:
        return
    if isinstance(value, dict):
        for item in value.values():
            _collect(item, secrets, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _collect(item, secrets, depth + 1)
    elif isinstance(value, str):
        secrets.add(value)
        if mentions_a_secret(value):  # a filter: its literals may be quoted alone
            for quoted, bare in _LITERALS.findall(value):
                secrets.add(quoted or bare)
    elif value is not None and not isinstance(value, bool):
        secrets.add(str(value))


def _traced_query(query: str, secrets: set[str]) -> str:
    """The query string as received, with each ``filter`` that mentions a secret, each credential
    parameter and each parameter holding a Secret Token replaced."""
    pairs = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        key = unquote_query(name).lower()
        text = unquote_query(value)
        if (
            key in CREDENTIAL_PARAMETERS
            or TOKEN_PREFIX in text
            or (eq and key == "filter" and mentions_a_secret(text))
        ):
            _collect(text, secrets)
            secrets.update(TOKEN_TEXT.findall(text))
            value = _REDACTED_QUERY
        if TOKEN_PREFIX in key:  # a token sent as a parameter's name
            secrets.update(TOKEN_TEXT.findall(key))
            name = _REDACTED_QUERY
        pairs.append(f"{name}{eq}{value}")
    return "&".join(pairs)


def _scrubbed(value: Any, echoed: list[str], depth: int = 0) -> Any:
    """An answer with each of the request's ``echoed`` secrets cut out of its strings."""
    if depth > MAX_TRACED_DEPTH and isinstance(value, dict | list):
        return _TOO_DEEP
    if isinstance(value, dict):
        return {key: _scrubbed(item, echoed, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, echoed, depth + 1) for item in value]
    if isinstance(value, str):
        for secret in echoed:
            if secret in value:
                value = value.replace(secret, REDACTED)
    return value
