"""``provisor tenant`` and ``provisor token``: tenants (isolated namespaces of users and groups),
their settings, traces and Secret Tokens.

Each command opens the store, works in it and closes it, so it can run while servers use the
same database: a running server follows a change within a second (its token and tenant cache).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from provisor.cli.common import (
    MAX_EXPIRES_IN_DAYS,
    MAX_PAGE_SIZE,
    MAX_RATE_LIMIT,
    MAX_TRACE,
    MIN_RATE_LIMIT,
    DbOption,
    check_range,
    fail,
    interrupted_status,
    open_store,
    progress_on_stderr,
    read_back,
    tenant_arg,
    terminated_as_interrupted,
)
from provisor.scim.compat import QUIRK_NAMES, QUIRKS, RETIRED

tenant_app = typer.Typer(help="Tenants: isolated namespaces of users and groups.", no_args_is_help=True)
token_app = typer.Typer(help="Secret Tokens: shown once, stored only as a hash.", no_args_is_help=True)

NetworkOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-network",
        help="Accept this tenant's requests only from this network, in CIDR notation (repeatable).",
    ),
]
PageSizeOption = Annotated[int | None, typer.Option(help="Largest page for this tenant.")]
CompatOption = Annotated[list[str] | None, typer.Option("--compat", help="NAME=on|off (repeatable).")]
RateLimitOption = Annotated[
    float | None, typer.Option(help="Requests a second this tenant may send (default: no limit).")
]
RateBurstOption = Annotated[
    int | None, typer.Option(help="Requests it may send at once (default: one second's worth).")
]
TraceOption = Annotated[
    int | None,
    typer.Option(
        "--trace", help="Keep this tenant's last N requests and answers (1-1000; see tenant trace)."
    ),
]


#: The longest token label (a label says what a token is for: "Entra production", say).
LABEL_MAX = 200


def check_label(label: str) -> None:
    """A usage error for a token label with a control character or line separator (it would break
    ``token list``'s one line a token, and could drive the terminal) or longer than LABEL_MAX."""
    if _has_control(label):
        fail(f"--label must not contain control characters (tab, newline...): {label!r}", 2)
    if len(label) > LABEL_MAX:
        fail(f"--label must be at most {LABEL_MAX} characters, not {len(label)}", 2)


def _has_control(text: str) -> bool:
    """Whether ``text`` holds a control character or a line or paragraph separator."""
    import unicodedata

    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


def parse_switches(values: list[str]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for item in values:
        name, sep, state = item.partition("=")
        if not sep or state.lower() not in ("on", "off", "true", "false"):
            fail(f"--compat takes NAME=on or NAME=off, not {item!r}", 2)
        if name in RETIRED:
            fail(f"compatibility switch {name!r} is retired: {RETIRED[name]}", 2)
        if name not in QUIRK_NAMES:
            fail(f"unknown compatibility switch {name!r}; known: {', '.join(sorted(QUIRK_NAMES))}", 2)
        out[name] = state.lower() in ("on", "true")
    return out


def tenant_settings(
    allowed_roles: list[str] | None,
    max_page_size: int | None,
    strict: bool | None,
    compat: list[str] | None,
    rate_limit: float | None = None,
    rate_burst: int | None = None,
    trace: int | None = None,
    networks: list[str] | None = None,
) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if networks:
        from ipaddress import ip_address

        from provisor.server.networks import parse_networks

        given = [n.strip() for item in networks for n in item.split(",") if n.strip()]
        try:
            parsed = parse_networks(given)
        except ValueError as exc:
            fail(f"--allow-network: {exc}", 2)
        if not parsed:  # "" or ",": would lock the tenant out of every address
            fail("--allow-network needs a network in CIDR notation (e.g. 203.0.113.0/24)", 2)
        for text, network in zip(given, parsed, strict=True):
            address = text.partition("/")[0]
            if "/" in text and network.network_address != ip_address(address):
                # host bits set: the network they are in, which may be wider than meant
                typer.echo(f"note: --allow-network {text} is the network {network}", err=True)
        settings["allowed_networks"] = list(dict.fromkeys(str(n) for n in parsed))
    if trace is not None:
        check_range("--trace", trace, 1, MAX_TRACE)
        settings["trace"] = trace
    if rate_limit is not None:
        check_range("--rate-limit", rate_limit, MIN_RATE_LIMIT, MAX_RATE_LIMIT)
        settings["rate_limit"] = rate_limit
    if rate_burst is not None:
        check_range("--rate-burst", rate_burst, 1, MAX_RATE_LIMIT)
        settings["rate_burst"] = rate_burst
    if allowed_roles:
        roles = [r.strip() for item in allowed_roles for r in item.split(",")]
        if not any(roles):  # "" or ",": an empty list would mean any role, not none
            fail("--allowed-role needs a role name (e.g. User); --any-role lifts the restriction", 2)
        for role in roles:
            if _has_control(role):  # no role a client sends holds one; it would break `tenant show`
                fail(f"--allowed-role must not contain control characters (tab, newline...): {role!r}", 2)
        settings["allowed_roles"] = list(dict.fromkeys(r for r in roles if r))
    if max_page_size is not None:
        check_range("--max-page-size", max_page_size, 1, MAX_PAGE_SIZE)
        settings["max_page_size"] = max_page_size
    if strict is not None:
        settings["strict"] = strict
    if compat:
        settings["compat"] = parse_switches(compat)
    return settings


# -- tenants ------------------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="Tenant name (unique).")],
    db: DbOption = None,
    allowed_roles: Annotated[
        list[str] | None,
        typer.Option("--allowed-role", help="Only accept these roles (repeatable, e.g. User)."),
    ] = None,
    max_page_size: PageSizeOption = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Strict RFC reading: every compatibility switch off.")
    ] = False,
    compat: CompatOption = None,
    rate_limit: RateLimitOption = None,
    rate_burst: RateBurstOption = None,
    trace: TraceOption = None,
    networks: NetworkOption = None,
    label: Annotated[str, typer.Option(help="Label of the first token.")] = "initial",
) -> None:
    """Create a tenant and print its first Secret Token (alone on the last line)."""
    from provisor.server.auth import issue_token
    from provisor.store.base import InvalidTenantName, check_tenant_name

    try:
        check_tenant_name(name)
    except InvalidTenantName as exc:
        fail(str(exc), 2)
    check_label(label)
    if rate_burst is not None and rate_limit is None:
        fail("--rate-burst needs --rate-limit: a burst is of a rate limit", 2)
    settings = tenant_settings(
        allowed_roles, max_page_size, strict or None, compat, rate_limit, rate_burst, trace, networks
    )
    with open_store(db, create=True) as store:
        tenant = store.create_tenant(name, settings)
        token, info = issue_token(store, tenant.id, label=label)
        shown = f"Created tenant {tenant.name} ({tenant.id}).\n"
        shown += f"Secret Token {info.prefix}… ({info.id}) - shown once; store it now:\n{token}"
        if not _show_once(shown):  # no one could read the token: no tenant that none reaches
            store.delete_tenant(tenant.id)
            fail(f"the Secret Token could not be printed, so tenant {tenant.name} was not kept")


@tenant_app.command("list")
def tenant_list(db: DbOption = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List tenants."""
    with open_store(db) as store:
        tenants = store.list_tenants()
    if as_json:
        for t in tenants:
            typer.echo(
                json.dumps(
                    {
                        "id": t.id,
                        "name": t.name,
                        "created": t.created.isoformat(),
                        "settings": None if t.unreadable else t.settings,
                        "unreadable": t.unreadable,
                        "deleting": t.deleting.isoformat() if t.deleting else None,
                    }
                )
            )
        return
    for t in tenants:
        deleting = f"\tbeing deleted since {t.deleting.isoformat()}" if t.deleting else ""
        settings = f"unreadable settings ({t.unreadable})" if t.unreadable else json.dumps(t.settings)
        typer.echo(f"{t.name}\t{t.id}\t{t.created.isoformat()}\t{settings}{deleting}")


@tenant_app.command("show")
def tenant_show(
    name: Annotated[str, typer.Argument(help="Tenant name or id.")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """A tenant's effective settings, how many users and groups it holds, and its tokens."""
    from provisor.server.tenancy import context_for

    with open_store(db) as store:
        tenant = store.get_tenant(name)
        counts = store.count_resources(tenant.id)
        tokens = store.list_tokens(tenant.id)
    ctx = context_for(tenant, MAX_PAGE_SIZE)
    now = datetime.now(UTC)
    active = [t for t in tokens if not t.revoked and not (t.expires and t.expires <= now)]
    used = max((t.last_used for t in tokens if t.last_used), default=None)
    page = ctx.max_page_size if ctx.max_page_size < MAX_PAGE_SIZE else None
    rate = ctx.rate_limit
    off = sorted(QUIRK_NAMES - ctx.compat.enabled)
    if as_json:
        record = {
            "id": tenant.id,
            "name": tenant.name,
            "created": tenant.created.isoformat(),
            "users": counts.get("User", 0),
            "groups": counts.get("Group", 0),
            "tokens": {
                "active": len(active),
                "all": len(tokens),
                "last_used": used.isoformat() if used else None,
            },
            "strict": tenant.settings.get("strict") is True,
            "compat": {q.name: q.name in ctx.compat.enabled for q in QUIRKS},
            "max_page_size": page,
            "allowed_roles": list(ctx.allowed_roles) if ctx.allowed_roles else None,
            "rate_limit": {"per_second": rate.per_second, "burst": rate.burst} if rate else None,
            "trace": ctx.trace or None,
            "allowed_networks": [str(n) for n in ctx.networks] if ctx.networks is not None else None,
            "deleting": tenant.deleting.isoformat() if tenant.deleting else None,
            "unreadable": tenant.unreadable,
        }
        typer.echo(json.dumps(record))
        return
    lines = [
        ("name", tenant.name),
        ("id", tenant.id),
        ("created", tenant.created.isoformat(timespec="seconds")),
        ("users", str(counts.get("User", 0))),
        ("groups", str(counts.get("Group", 0))),
        (
            "tokens",
            f"{len(active)} active of {len(tokens)}, last used "
            + (used.isoformat(timespec="seconds") if used else "never"),
        ),
        ("compat", "all on" if not off else f"off: {', '.join(off)}"),
        (
            "page size",
            f"at most {page}, or the server's --max-page-size when lower"
            if page
            else "the server's (provisor serve --max-page-size)",
        ),
        ("roles", ", ".join(ctx.allowed_roles) if ctx.allowed_roles else "any"),
        ("rate limit", f"{rate.per_second:g} a second, bursts of {rate.burst}" if rate else "none"),
        (
            "trace",
            f"the last {ctx.trace} requests (provisor tenant trace {tenant_arg(tenant.name)})"
            if ctx.trace
            else "off",
        ),
        ("networks", "none: see settings" if tenant.unreadable else _networks_text(ctx.networks)),
    ]
    if tenant.unreadable:
        lines.insert(
            3,
            (
                "settings",
                f"UNREADABLE ({tenant.unreadable}); it accepts no requests until they are set "
                f"again (provisor tenant set OPTIONS {tenant_arg(tenant.name)})",
            ),
        )
    if tenant.deleting:
        since = tenant.deleting.isoformat(timespec="seconds")
        finish = f"provisor tenant delete {tenant_arg(tenant.name)}"
        lines.append(("deleting", f"since {since}; to finish: {finish}"))
    for label, value in lines:
        typer.echo(f"{label + ':':12}{value}")


def _networks_text(networks: tuple[Any, ...] | None) -> str:
    if networks is None:
        return "any"
    if not networks:
        return "none: the stored setting is not a list of networks (tenant set --allow-network)"
    return ", ".join(str(n) for n in networks)


@tenant_app.command("delete")
def tenant_delete(
    name: Annotated[str, typer.Argument(help="Tenant name or id.")],
    db: DbOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete a tenant with all its users, groups and tokens.

    Its tokens stop working within a second (a running server's token cache); the rest goes in
    short steps, so that servers on the same database keep writing for the other tenants
    meanwhile. A deletion that was stopped (Ctrl-C, SIGTERM, a crash) leaves the tenant marked as
    being deleted: run this again to finish it."""
    from provisor.store.base import DeletionProgress

    if not yes:
        if not sys.stdin.isatty():  # a script: no one to ask, and no answer piped in is taken
            fail(f"tenant {name} not deleted: there is no terminal to ask on; add --yes to delete it", 2)
        if not typer.confirm(f"Delete tenant {name} and everything in it?"):
            fail("not deleted")

    def described(step: DeletionProgress) -> str:
        return f"deleting tenant {step.tenant.name}: {step.deleted:,} of {step.total:,} users and groups"

    progress = progress_on_stderr(described)

    with terminated_as_interrupted() as signals:
        try:
            with open_store(db) as store:
                store.delete_tenant(name, progress=progress)
        except KeyboardInterrupt:
            fail(_interrupted_deletion(db, name), interrupted_status(signals))
    typer.echo(f"Deleted tenant {name}.")


def _interrupted_deletion(db: str | None, name: str) -> str:
    """What Ctrl-C left of ``tenant delete``, as the database shows it: the tenant marked (partly
    deleted), not marked (stopped before the deletion began), or not there."""
    from provisor.store.base import TenantNotFound

    def state(store: Any) -> str:
        try:
            return "marked" if store.get_tenant(name).deleting is not None else "untouched"
        except TenantNotFound:
            return "gone"

    again = f"provisor tenant delete {tenant_arg(name)}"
    found = read_back(db, state)
    if found == "untouched":
        return f"interrupted before tenant {name} was changed: nothing was deleted"
    if found == "gone":
        return f"interrupted: there is no tenant {name} now"
    if found == "marked":
        return f"interrupted: tenant {name} is partly deleted and accepts no token; finish with: {again}"
    return f"interrupted: if tenant list shows tenant {name} as being deleted, finish with: {again}"


@tenant_app.command("set")
def tenant_set(
    name: Annotated[str, typer.Argument(help="Tenant name or id.")],
    db: DbOption = None,
    allowed_roles: Annotated[
        list[str] | None, typer.Option("--allowed-role", help="Only accept these roles.")
    ] = None,
    any_role: Annotated[
        bool, typer.Option("--any-role", help="Accept any role again (remove --allowed-role).")
    ] = False,
    max_page_size: PageSizeOption = None,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--lenient",
            help="Strict RFC reading (every switch off), or Entra/Okta tolerance (every switch on);"
            " either clears switches set one by one with --compat before.",
        ),
    ] = None,
    compat: CompatOption = None,
    rate_limit: RateLimitOption = None,
    rate_burst: RateBurstOption = None,
    no_rate_limit: Annotated[
        bool, typer.Option("--no-rate-limit", help="Remove the tenant's rate limit.")
    ] = False,
    trace: TraceOption = None,
    no_trace: Annotated[
        bool, typer.Option("--no-trace", help="Stop tracing and delete the traces kept.")
    ] = False,
    networks: NetworkOption = None,
    any_network: Annotated[
        bool, typer.Option("--any-network", help="Accept the tenant's requests from any address again.")
    ] = False,
) -> None:
    """Change a tenant's settings (compatibility switches, page size, allowed roles, rate limit,
    tracing, allowed networks)."""
    settings = tenant_settings(
        allowed_roles, max_page_size, strict, compat, rate_limit, rate_burst, trace, networks
    )
    if any_role:
        if allowed_roles:
            fail("--any-role cannot go with --allowed-role", 2)
        settings["allowed_roles"] = None
    if any_network:
        if networks:
            fail("--any-network cannot go with --allow-network", 2)
        settings["allowed_networks"] = None
    if no_rate_limit:
        if rate_limit is not None or rate_burst is not None:
            fail("--no-rate-limit cannot go with --rate-limit or --rate-burst", 2)
        settings.update(rate_limit=None, rate_burst=None)  # None removes a setting
    if no_trace:
        if trace is not None:
            fail("--no-trace cannot go with --trace", 2)
        settings["trace"] = None
    if not settings:
        fail("nothing to change; see --help", 2)
    with open_store(db) as store:
        current = store.get_tenant(name)
        if rate_burst is not None and rate_limit is None and not current.settings.get("rate_limit"):
            fail(f"--rate-burst needs a rate limit, and tenant {current.name} has none: add --rate-limit", 2)
        if unreadable := current.unreadable:
            typer.echo(f"The stored settings could not be read ({unreadable}); these replace them.", err=True)
        # the store merges --compat into the stored switches in its write transaction: two admins
        # changing different switches at once both keep theirs. --strict and --lenient set every
        # switch: the ones set one by one before go (replaced by any --compat given with them)
        replacing: tuple[str, ...] = ()
        if strict is not None:
            settings.setdefault("compat", None)
            replacing = ("compat",)
        tenant = store.update_settings(name, settings, replacing)
        if no_trace:
            store.delete_traces(tenant.id)
    typer.echo(json.dumps(tenant.settings))


@tenant_app.command("trace")
def tenant_trace(
    name: Annotated[str, typer.Argument(help="Tenant name or id.")],
    db: DbOption = None,
    limit: Annotated[int | None, typer.Option(help="Only the last N requests.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Then print each new request as it comes, until Ctrl-C.")
    ] = False,
) -> None:
    """Print the requests a tenant with tracing on sent, oldest first, with their answers."""
    if limit is not None:
        check_range("--limit", limit, 1, MAX_TRACE)
    with open_store(db) as store:
        tenant = store.get_tenant(name)
        traces = store.traces(tenant.id, limit)
        hint = (
            ""
            if tenant.settings.get("trace")
            else f"; turn it on with: provisor tenant set --trace 100 {tenant_arg(name)}"
        )
        if not traces and not as_json:
            waiting = ", waiting for some (Ctrl-C stops)" if follow else ""
            typer.echo(f"No traces of tenant {tenant.name}{waiting}{hint}.", err=True)
        for t in traces:
            _print_trace(t, as_json)
        if not follow:
            return
        last = traces[-1].seq if traces else 0
        try:
            while True:
                time.sleep(FOLLOW_SECONDS)
                fresh = store.traces(tenant.id, after=last)
                if not fresh:
                    if not _still_there(store, tenant.id):
                        fail(f"tenant {tenant.name} was deleted: no more traces will come")
                    newest = store.traces(tenant.id, 1)
                    if newest and newest[-1].seq < last:  # traces deleted (--no-trace): numbers restart
                        last = 0
                        fresh = store.traces(tenant.id)
                for t in fresh:
                    _print_trace(t, as_json)
                    last = t.seq
        except KeyboardInterrupt:
            return


def _still_there(store: Any, tenant_id: str) -> bool:
    """Whether the tenant is there and not being deleted (``tenant trace --follow`` waits on)."""
    from provisor.store.base import TenantNotFound

    try:
        return store.get_tenant(tenant_id).deleting is None
    except TenantNotFound:
        return False


#: How often ``tenant trace --follow`` looks for new traces.
FOLLOW_SECONDS = 0.5


def _print_trace(t: Any, as_json: bool) -> None:
    if as_json:
        record = {
            "time": t.time.isoformat(),
            "method": t.method,
            "target": t.target,
            "status": t.status,
            "request": t.request,
            "response": t.response,
        }
        typer.echo(json.dumps(record, ensure_ascii=False))
        return
    typer.echo(f"{t.time.isoformat()}  {t.method} {t.target}  -> {t.status}")
    for label, text in (("request", t.request), ("response", t.response)):
        if text is not None:
            typer.echo(f"  {label}: {text}")


@tenant_app.command("compat")
def tenant_compat() -> None:
    """List the compatibility switches (all on by default)."""
    for q in QUIRKS:
        typer.echo(f"{q.name:32} {q.cites:7} {q.summary}")


# -- tokens -------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    tenant: Annotated[str, typer.Argument(help="Tenant name or id.")],
    db: DbOption = None,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    expires_in_days: Annotated[
        int | None, typer.Option(help="Expire after this many days (default: never).")
    ] = None,
) -> None:
    """Create another Secret Token for a tenant (printed alone on the last line)."""
    from provisor.server.auth import issue_token

    check_label(label)
    if expires_in_days is not None:
        check_range("--expires-in-days", expires_in_days, 1, MAX_EXPIRES_IN_DAYS)
    expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    with open_store(db) as store:
        t = store.get_tenant(tenant)
        token, info = issue_token(store, t.id, label=label, expires=expires)
        if not _show_once(
            f"Secret Token {info.prefix}… ({info.id}) for tenant {t.name} - shown once:\n{token}"
        ):
            store.revoke_token(info.id)  # a token no one saw must not stay valid
            fail(f"the Secret Token could not be printed, so it was revoked ({info.id})")


def _show_once(text: str) -> bool:
    """Print ``text``, a Secret Token's only showing, on standard output, flushed; False when it
    could not be written (a full disk, a closed pipe: ``> /dev/full``, ``| true``)."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except OSError:
        # Python would try the flush again at exit and complain on stderr: drop what is buffered
        with contextlib.suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
        return False
    return True


@token_app.command("list")
def token_list(
    tenant: Annotated[str, typer.Argument(help="Tenant name or id.")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """List a tenant's tokens (ids and prefixes only; tokens themselves are never stored), with
    when a server last accepted each (to the minute)."""
    with open_store(db) as store:
        t = store.get_tenant(tenant)
        tokens = store.list_tokens(t.id)
    now = datetime.now(UTC)
    for info in tokens:
        state = (
            "revoked" if info.revoked else ("expired" if info.expires and info.expires <= now else "active")
        )
        if as_json:
            when = {
                k: v.isoformat() if v else None
                for k, v in (("expires", info.expires), ("last_used", info.last_used))
            }
            record = {"id": info.id, "prefix": info.prefix, "state": state, "label": info.label}
            typer.echo(json.dumps({**record, "created": info.created.isoformat(), **when}))
            continue
        expires = info.expires.isoformat() if info.expires else "never"
        used = info.last_used.isoformat(timespec="seconds") if info.last_used else "never"
        typer.echo(f"{info.id}\t{info.prefix}…\t{state}\texpires {expires}\tused {used}\t{info.label}")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[
        str, typer.Argument(help="Token id (see 'token list'), or the Secret Token itself (a leaked one).")
    ],
    db: DbOption = None,
) -> None:
    """Revoke a token; a running server stops honouring it within a second. Given the Secret
    Token itself, the token it is is revoked, and the secret is never printed back; so is one
    pasted with what surrounded it (``Bearer pvs_...``, quotes, a trailing comma or space)."""
    from provisor.scim.compat.credentials import TOKEN_PREFIX, TOKEN_TEXT
    from provisor.server.auth import hash_token, public_prefix

    with open_store(db) as store:
        if TOKEN_PREFIX in token_id:
            pasted = TOKEN_TEXT.search(token_id)
            secret = pasted.group() if pasted is not None else TOKEN_PREFIX
            found = store.token_by_hash(hash_token(secret))
            if found is None:
                fail(f"no token is that Secret Token ({public_prefix(secret)}…)")
            info, tenant = found
            store.revoke_token(info.id)
            typer.echo(f"Revoked token {info.id} ({info.prefix}…) of tenant {tenant.name}.")
            return
        store.revoke_token(token_id)
    typer.echo(f"Revoked token {token_id}.")
