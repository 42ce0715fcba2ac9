"""``provisor doctor``: what in a deployment needs an operator, before Entra finds out.

Entra quarantines a provisioning job whose requests keep failing and mails its admins; the most
common cause on the app's side is a Secret Token that expired or was revoked with no other in
place. This command reads the database and every tenant and reports, one line each:

- problems (exit status 1): the database fails SQLite's ``quick_check``; a tenant no token can
  reach (none active); a tenant whose allowed networks cannot be read (it accepts no address);
- warnings: an active token that expires within ``--days`` days; a tenant with tracing on (its
  traces hold personal data, meant for debugging an integration, not to stay on).
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from provisor.cli.common import DbOption, check_range, integrity_summary, open_store, tenant_arg

PROBLEM = "problem"
WARNING = "warning"


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to ``app`` (the ``provisor`` CLI of ``cli.main``)."""

    @app.command("doctor")
    def doctor(
        db: DbOption = None,
        days: Annotated[int, typer.Option(help="Warn of tokens that expire within this many days.")] = 14,
    ) -> None:
        """Report what needs an operator: tokens expiring, or expired while in use, tenants no
        token reaches, tracing left on, a damaged database. Exit 1 when there is a problem."""
        check_range("--days", days, 0, 36_500)
        with open_store(db) as store:
            tenants = store.list_tenants()
            findings = examine(store, tenants, datetime.now(UTC), timedelta(days=days))
        for level, text in findings:
            typer.echo(f"{level}: {text}")
        problems = sum(1 for level, _ in findings if level == PROBLEM)
        if not findings:
            typer.echo(f"Nothing needs attention ({_count(len(tenants), 'tenant')}).")
            return
        typer.echo(f"{_count(problems, 'problem')}, {_count(len(findings) - problems, 'warning')}.")
        if problems:
            raise typer.Exit(1)


def examine(store: Any, tenants: list[Any], now: datetime, soon: timedelta) -> list[tuple[str, str]]:
    """The findings of the database and of each of ``tenants``, in that order."""
    from provisor.server.networks import compile_networks

    findings: list[tuple[str, str]] = []
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            check = [row[0] for row in conn.exec_driver_sql("PRAGMA quick_check")]
        if check != ["ok"]:  # one row or several, each possibly of several lines
            findings.append(
                (
                    PROBLEM,
                    f"the database fails SQLite's quick_check: {integrity_summary(check)}; "
                    "restore the last backup (provisor backup makes them)",
                )
            )
    for tenant in tenants:
        name = shlex.quote(tenant.name)  # the tenant is called as the commands below take it
        arg = tenant_arg(tenant.name)
        if tenant.deleting:  # tokens gone, resources going: nothing else about it is news
            findings.append(
                (
                    PROBLEM,
                    f"tenant {name}: its deletion was stopped part way, so it accepts no token and "
                    f"holds what is left of its data (finish it: provisor tenant delete --yes {arg})",
                )
            )
            continue
        tokens = store.list_tokens(tenant.id)
        active = [t for t in tokens if t.revoked is None and (t.expires is None or t.expires > now)]
        if not active:
            findings.append(
                (
                    PROBLEM,
                    f"tenant {name}: no active Secret Token, so no client can reach it "
                    f"(make one: provisor token create {arg})",
                )
            )
        for t in tokens:  # a token that expired while in use: its client is refused now
            if (
                t.revoked is None
                and t.expires is not None
                and t.expires <= now
                and now - t.expires <= soon
                and t.last_used is not None
                and t.expires - t.last_used <= soon
            ):
                findings.append(
                    (
                        PROBLEM,
                        f"tenant {name}: token {t.id} ({t.label or 'no label'}) expired "
                        f"{t.expires.isoformat(timespec='minutes')}, last used "
                        f"{t.last_used.isoformat(timespec='minutes')}: a client still sending it is refused "
                        f"(give it another: provisor token create {arg}; revoke this one once none uses it: "
                        f"provisor token revoke {t.id})",
                    )
                )
        for t in active:
            if t.expires is not None and t.expires - now <= soon:
                findings.append(
                    (
                        WARNING,
                        f"tenant {name}: token {t.id} ({t.label or 'no label'}) expires "
                        f"{t.expires.isoformat(timespec='minutes')}: give Entra a new one before then",
                    )
                )
        settings = tenant.settings
        if tenant.unreadable:
            findings.append(
                (
                    PROBLEM,
                    f"tenant {name}: its stored settings cannot be read ({tenant.unreadable}), so "
                    f"it accepts no requests (set them again: provisor tenant set OPTIONS {arg})",
                )
            )
        elif compile_networks(settings.get("allowed_networks")) == ():  # None: any address
            findings.append(
                (
                    PROBLEM,
                    f"tenant {name}: its allowed networks cannot be read, so it accepts no "
                    f"address (set them again: provisor tenant set --allow-network CIDR {arg})",
                )
            )
        if settings.get("trace"):
            findings.append(
                (
                    WARNING,
                    f"tenant {name}: tracing is on (its traces hold personal data; stop it: "
                    f"provisor tenant set --no-trace {arg})",
                )
            )
    return findings


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
