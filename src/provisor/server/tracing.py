"""Request traces: what a tenant's client sent and what it was answered, for integrators.

A tenant with the setting ``trace`` (``provisor tenant set NAME --trace N``) has its last N
requests kept with their answers; ``provisor tenant trace NAME`` prints them. It is the way to see
the exact PATCH an Entra cycle sent. Off by default, for three reasons: every traced request is
one more write, bodies hold personal data, and a trace is only useful while an integration is
being built or debugged.

What is kept: the method, the path with its query string, the status, and both bodies as JSON
text, each cut at :data:`MAX_TRACED_BODY` characters. What never is: any header (the Secret Token
travels in one), any ``password`` value (Okta can send one on create: its key anywhere in a
body, or the ``value`` of a PATCH operation whose path names it, is replaced by
:data:`REDACTED`), and a body that is not JSON (only its size is kept: the secrets in it could
not be found to redact).
"""

from __future__ import annotations

from typing import Any

import orjson

#: The most characters of each body a trace keeps.
MAX_TRACED_BODY = 64 * 1024
REDACTED = "[redacted]"
#: Attribute names whose values never reach a trace (RFC 7643 section 4.1.1: ``password`` is
#: writeOnly and returned never; no other attribute of the schemas is).
SECRET_NAMES = frozenset({"password"})


def traced_body(raw: bytes | None) -> str | None:
    """``raw`` as a trace keeps it: None when empty, secrets redacted, cut at the limit."""
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return f"({len(raw)} bytes that are not JSON; not kept, as a secret in them could not be redacted)"
    text = orjson.dumps(_redacted(data)).decode()
    if len(text) > MAX_TRACED_BODY:
        return f"{text[:MAX_TRACED_BODY]}… (cut: {len(text)} characters in all)"
    return text


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        secret_path = _names_a_secret(value)
        for key, item in value.items():
            low = key.lower() if isinstance(key, str) else key
            if low in SECRET_NAMES or (secret_path and low == "value"):
                out[key] = REDACTED
            else:
                out[key] = _redacted(item)
        return out
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def _names_a_secret(operation: dict[str, Any]) -> bool:
    """Whether ``operation`` is a PATCH operation whose path names a secret attribute
    (``password``, ``urn:...:User:password``)."""
    path = next((v for k, v in operation.items() if isinstance(k, str) and k.lower() == "path"), None)
    if not isinstance(path, str):
        return False
    last = path.replace(":", ".").rsplit(".", 1)[-1].strip().lower()
    return last in SECRET_NAMES
