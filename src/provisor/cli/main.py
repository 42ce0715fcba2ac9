"""``provisor``: the command line. This module serves SCIM and runs the demo, and gathers the
other commands: ``tenant`` and ``token`` (``cli/tenants.py``), the provisioning jobs
(``cli/jobs.py``), ``schema`` (``cli/schemas.py``) and ``backup`` (``cli/backup.py``).

Every command takes ``--db URL`` (or ``PROVISOR_DB``); the default is ``sqlite:///provisor.db``.
Errors are one line on stderr and a non-zero exit, never a traceback (``cli/common.py``).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from provisor.cli.common import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_BODY_BYTES,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_LIMIT,
    MAX_PAGE_SIZE,
    MAX_TIMEOUT,
    MIN_TIMEOUT,
    SHUTDOWN_TIMEOUT,
    WRITE_TIMEOUT,
    DbOption,
    check_range,
    db_url,
    fail,
    open_store,
)
from provisor.cli.tenants import tenant_app, token_app

app = typer.Typer(
    name="provisor",
    help="Automatic user provisioning over SCIM 2.0.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # help texts are plain text: an address like ``https://host[/prefix]`` is not rich markup
    rich_markup_mode=None,
)


def _print_version(asked: bool) -> None:
    if asked:
        from provisor import __version__

        typer.echo(f"provisor {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """Automatic user provisioning over SCIM 2.0."""


app.add_typer(tenant_app, name="tenant")
app.add_typer(token_app, name="token")


# -- serve --------------------------------------------------------------------------------------


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.", envvar="PROVISOR_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", envvar="PROVISOR_PORT")] = 8000,
    tls_cert: Annotated[
        str | None,
        typer.Option(
            "--tls-cert", help="PEM certificate: serve HTTPS (TLS 1.2+).", envvar="PROVISOR_TLS_CERT"
        ),
    ] = None,
    tls_key: Annotated[
        str | None,
        typer.Option("--tls-key", help="PEM private key for --tls-cert.", envvar="PROVISOR_TLS_KEY"),
    ] = None,
    max_page_size: Annotated[
        int, typer.Option(help="Largest page a list may return.", envvar="PROVISOR_MAX_PAGE_SIZE")
    ] = 1000,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest accepted request body.", envvar="PROVISOR_MAX_BODY_BYTES")
    ] = 1_048_576,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning, error or critical.", envvar="PROVISOR_LOG_LEVEL")
    ] = "info",
    log_format: Annotated[
        str,
        typer.Option(
            help="text, or json: one JSON object a line for every log line.", envvar="PROVISOR_LOG_FORMAT"
        ),
    ] = "text",
    no_access_log: Annotated[
        bool,
        typer.Option("--no-access-log", help="Do not log each request.", envvar="PROVISOR_NO_ACCESS_LOG"),
    ] = False,
    documentation_uri: Annotated[
        str | None,
        typer.Option(
            "--documentation-uri",
            help="Where your app documents its SCIM endpoint (ServiceProviderConfig documentationUri).",
            envvar="PROVISOR_DOCUMENTATION_URI",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The address clients reach this server at, behind a proxy that does not pass on "
            "Host (https://scim.example.com[/prefix]): meta.location, Location and $ref start with it.",
            envvar="PROVISOR_PUBLIC_URL",
        ),
    ] = None,
    header_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a request's head may take from its first byte; a slower one is answered 408.",
            envvar="PROVISOR_HEADER_TIMEOUT",
        ),
    ] = HEADER_TIMEOUT,
    body_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a request body may pause; a longer pause is answered 408.",
            envvar="PROVISOR_BODY_TIMEOUT",
        ),
    ] = BODY_TIMEOUT,
    write_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds writing an answer may stall (the client reads none of it) before the "
            "connection is closed; a client that reads, however slowly, is not cut off.",
            envvar="PROVISOR_WRITE_TIMEOUT",
        ),
    ] = WRITE_TIMEOUT,
    shutdown_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a stop (SIGTERM, Ctrl-C) waits for the requests under way and the "
            "connections closing (a TLS client that does not answer the close); then the server "
            "exits, and requests still running get no answer.",
            envvar="PROVISOR_SHUTDOWN_TIMEOUT",
        ),
    ] = SHUTDOWN_TIMEOUT,
    max_connections: Annotated[
        int,
        typer.Option(
            help="Connections served at once; requests past them are answered 503. Also the most "
            "connections held that have not sent a request yet: past it the oldest is closed.",
            envvar="PROVISOR_MAX_CONNECTIONS",
        ),
    ] = MAX_CONNECTIONS,
    max_connections_per_client: Annotated[
        int,
        typer.Option(
            help="Connections served at once from one client address, past which its requests are "
            "answered 503; 0 (the default) for no such cap. Behind a reverse proxy every connection "
            "comes from the proxy's address: leave it 0 there.",
            envvar="PROVISOR_MAX_CONNECTIONS_PER_CLIENT",
        ),
    ] = 0,
) -> None:
    """Serve SCIM 2.0 at http(s)://HOST:PORT/scim/v2. Every option can also come from the
    environment (PROVISOR_PORT, PROVISOR_LOG_FORMAT, ...: see each option's env var)."""
    from provisor.cli import serving

    require_http_protocol()
    check_range("--port", port, 0, 65535)
    check_range("--max-page-size", max_page_size, 1, MAX_PAGE_SIZE)
    check_range("--max-body-bytes", max_body_bytes, 1, MAX_BODY_BYTES)
    check_range("--header-timeout", header_timeout, MIN_TIMEOUT, MAX_TIMEOUT)
    check_range("--body-timeout", body_timeout, MIN_TIMEOUT, MAX_TIMEOUT)
    check_range("--write-timeout", write_timeout, MIN_TIMEOUT, MAX_TIMEOUT)
    check_range("--shutdown-timeout", shutdown_timeout, MIN_TIMEOUT, MAX_TIMEOUT)
    check_range("--max-connections", max_connections, 1, MAX_CONNECTIONS_LIMIT)
    check_range("--max-connections-per-client", max_connections_per_client, 0, MAX_CONNECTIONS_LIMIT)
    if not host.strip():  # asyncio would listen on every interface
        fail("--host is empty: give 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)", 2)
    if log_level.lower() not in LOG_LEVELS:
        fail(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}", 2)
    if log_format.lower() not in LOG_FORMATS:
        fail(f"--log-format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}", 2)
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together", 2)
    if tls_cert is not None and tls_key is not None:
        check_tls(tls_cert, tls_key)
    if documentation_uri is not None and not documentation_uri.startswith(("https://", "http://")):
        fail(f"--documentation-uri must be an http(s) URL, not {documentation_uri!r}", 2)
    if public_url is not None:
        check_public_url(public_url)
    if (problem := serving.listen_problem(host, port)) is not None:
        fail(problem)
    with open_store(db, create=True, upgrade=True) as store:
        store.ping()  # a file that cannot be written (a read-only file system): say so, not 503 each write
        serving.run_server(
            store,
            host=host,
            port=port,
            tls_cert=tls_cert,
            tls_key=tls_key,
            max_page_size=max_page_size,
            max_body_bytes=max_body_bytes,
            log_level=log_level.lower(),
            log_format=log_format.lower(),
            access_log=not no_access_log,
            documentation_uri=documentation_uri,
            public_url=public_url,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            write_timeout=write_timeout,
            shutdown_timeout=shutdown_timeout,
            max_connections=max_connections,
            max_connections_per_client=max_connections_per_client,
        )


def require_http_protocol() -> None:
    """Fail unless the HTTP protocol the server runs on can be loaded (``cli/coalescing.py``)."""
    from provisor.cli.coalescing import HttpToolsMissing, coalescing_protocol

    try:
        coalescing_protocol()
    except HttpToolsMissing as exc:
        fail(str(exc))


def check_public_url(url: str) -> None:
    """Fail unless ``url`` is an absolute http(s) URL with a host and no query or fragment."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        fail(f"--public-url must be an http(s) URL such as https://scim.example.com, not {url!r}", 2)
    if parts.path.rstrip("/").endswith("/scim/v2"):
        fail(f"--public-url is the server's address without /scim/v2 (which is added), not {url!r}", 2)


class _KeyEncrypted(Exception):
    """The private key asked for its pass phrase."""


def _no_pass_phrase() -> str:
    raise _KeyEncrypted


def check_tls(cert: str, key: str) -> None:
    """Fail unless ``cert`` and ``key`` are readable PEM files of a certificate and its key.

    An encrypted key is refused: serve takes no pass phrase, and without a callback OpenSSL asks
    for one on the terminal (a server started by hand would wait there, a service fail with
    "Invalid argument")."""
    import ssl

    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not os.path.isfile(path):
            fail(
                f"{option} {path}: "
                + ("a directory, not a PEM file" if os.path.isdir(path) else "no such file")
            )
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key, _no_pass_phrase)
    except _KeyEncrypted:
        fail(
            f"--tls-key {key} is encrypted (it asks for a pass phrase), which serve cannot read: write "
            f"it out unencrypted (openssl pkey -in {key} -out NEW.pem) and keep that file private"
        )
    except (ssl.SSLError, OSError) as exc:
        if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
            fail(
                f"--tls-key {key} is not the private key of --tls-cert {cert}: give the key it was made with"
            )
        fail(f"--tls-cert {cert} with --tls-key {key}: not a PEM certificate and its private key ({exc})")


# -- demo ---------------------------------------------------------------------------------------


@app.command()
def demo(
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL (default: $PROVISOR_DB or sqlite:///provisor-demo.db)."),
    ] = None,
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8000,
    once: Annotated[
        bool, typer.Option("--once", help="Exit after the walk-through instead of serving on.")
    ] = False,
) -> None:
    """Start a server with a demo tenant and show a user and a group going in and coming back."""
    from provisor.cli.demo import run_demo
    from provisor.cli.serving import listen_problem

    require_http_protocol()
    check_range("--port", port, 0, 65535)
    if (problem := listen_problem("127.0.0.1", port)) is not None:
        fail(problem)
    run_demo(
        db_url(db) if db is not None or os.environ.get("PROVISOR_DB") else "sqlite:///provisor-demo.db",
        port=port,
        once=once,
    )


@app.command()
def upgrade(db: DbOption = None) -> None:
    """Upgrade the database to this version's schema. Stop every server of the older version on
    it first: each would go on writing to a schema it does not know. Other commands never upgrade
    a database (they say when it needs this); `provisor serve` of this version does."""
    from provisor.cli.common import missing_sqlite_file
    from provisor.store.sql import SqlStore
    from provisor.store.sql.migrate import OutdatedDatabase, head_revision

    url = db_url(db)
    if (missing := missing_sqlite_file(url)) is not None:
        fail(f"no database at {missing}: check --db (or $PROVISOR_DB)")
    before = None
    try:
        SqlStore(url, upgrade=False).close()
    except OutdatedDatabase as exc:
        before = exc.current
    except Exception:  # noqa: S110 - opening it again below says what is wrong, in one line
        pass
    with open_store(db, upgrade=True):
        pass
    if before is None:
        typer.echo(f"The database is at schema {head_revision()}, this version's: nothing to upgrade.")
    else:
        typer.echo(f"Upgraded the database from schema {before} to {head_revision()}.")


def _register_more() -> None:
    from provisor.cli.backup import register as register_backup
    from provisor.cli.doctor import register as register_doctor
    from provisor.cli.jobs import register as register_jobs
    from provisor.cli.schemas import register as register_schemas

    register_jobs(app)
    register_schemas(app)
    register_backup(app)
    register_doctor(app)


_register_more()


def _parser_error(name: str) -> type[Exception]:
    """The command-line parser's exception class ``name`` (Typer keeps its own copy of click's,
    and exports only ``BadParameter``: the others are found among that one's bases). Should a
    Typer release rename them, ``BadParameter`` alone is caught: the tests of usage errors say so."""
    found = next((c for c in typer.BadParameter.__mro__ if c.__name__ == name), None)
    return found if found is not None and issubclass(found, Exception) else typer.BadParameter


_USAGE_ERROR = _parser_error("UsageError")
_PARSER_ERROR = _parser_error("ClickException")


def main() -> None:
    """The ``provisor`` console script. A usage error (a missing argument, an unknown option, a value
    of the wrong type) is one line on stderr and exit 2, like every other error of the CLI."""
    for i, arg in enumerate(sys.argv[1:], 1):
        # bytes that are not UTF-8 reach Python as lone surrogates, which no name, label or path
        # the database keeps can hold (encoding them raised a traceback)
        if any("\udc80" <= ch <= "\udcff" for ch in arg):
            typer.echo(f"provisor: argument {i} is not valid UTF-8 text", err=True)
            sys.exit(2)
    try:
        code = app(standalone_mode=False, prog_name="provisor")
    except _PARSER_ERROR as exc:
        exit_code: int = getattr(exc, "exit_code", 2)
        message: str = exc.format_message()  # type: ignore[attr-defined]
        if type(exc).__name__ == "NoArgsIsHelpError":  # `provisor`, `provisor tenant`: the help
            typer.echo(message)
            sys.exit(exit_code)
        if isinstance(exc, _USAGE_ERROR):
            ctx = getattr(exc, "ctx", None)
            message += f" (see {ctx.command_path if ctx is not None else 'provisor'} --help)"
        typer.echo(f"provisor: {message}", err=True)
        sys.exit(exit_code)
    except typer.Abort:
        typer.echo("provisor: aborted", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
