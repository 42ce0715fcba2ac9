"""``provisor schema``: declare the extension schemas Entra's and Okta's custom attributes use.

A declaration is for the whole deployment (every tenant speaks the app's one schema), is stored in
the database, and reaches a running ``provisor serve`` within seconds (``schema_check_seconds``).
"""

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from provisor.cli.common import (
    DbOption,
    fail,
    interrupted_status,
    open_store,
    progress_on_stderr,
    read_back,
    terminated_as_interrupted,
)

APPLIED = "a running `provisor serve` applies this within a few seconds (it looks every 2 s)"


def finish_command(urn: str) -> str:
    """The command that finishes a removal that was stopped."""
    return f"provisor schema remove {shlex.quote(urn)} --purge"


def interrupted_removal(db: str | None, urn: str) -> str:
    """What Ctrl-C left of ``schema remove``, as the database shows it: the declaration marked
    (partly removed), declared and not marked (stopped before the removal began), or gone."""

    def state(store: Any) -> str:
        if any(key.lower() == urn.lower() for key in store.schema_removals()):
            return "marked"
        declared = any(e.urn.lower() == urn.lower() for e in store.schema_extensions())
        return "untouched" if declared else "gone"

    found = read_back(db, state)
    if found == "untouched":
        return f"interrupted before {urn} was changed: nothing was removed"
    if found == "gone":
        return f"interrupted: no extension schema {urn} is declared now"
    if found == "marked":
        return (
            f"interrupted: {urn} is partly removed (servers neither show nor take its values); "
            f"to finish: {finish_command(urn)}"
        )
    return f"interrupted: if schema list shows {urn} as being removed, finish with: {finish_command(urn)}"


def register(app: typer.Typer) -> None:
    """Add the ``schema`` command group to ``app`` (the ``provisor`` CLI of ``cli.main``)."""
    schema_app = typer.Typer(
        help="Extension schemas: custom attributes under a URN of the app's choosing, for every tenant.",
        no_args_is_help=True,
    )
    app.add_typer(schema_app, name="schema")

    @schema_app.command("add")
    def schema_add(
        file: Annotated[str, typer.Argument(help="The schema as JSON (RFC 7643 section 7), or - for stdin.")],
        db: DbOption = None,
        resource_type: Annotated[
            str, typer.Option("--resource-type", help="The resource type it extends.")
        ] = "User",
        required: Annotated[
            bool, typer.Option("--required", help="Every resource of that type must carry it.")
        ] = False,
    ) -> None:
        """Declare an extension schema (its URN is printed alone on the last line)."""
        from provisor.scim.schema.extensions import InvalidSchemaDefinition, parse_extension
        from provisor.store.base import RequiredExtensionMissing, SchemaExtensionRemoving

        if not file.strip():  # Path("") is the current folder: "Is a directory"
            fail("the schema file name is empty: give a JSON file, or - for stdin", 2)
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text("utf-8")
            text = text.removeprefix("\ufeff")  # the byte order mark Windows editors write
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror or exc}")
        except UnicodeDecodeError as exc:
            fail(f"cannot read {file}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        try:
            definition = json.loads(text)
        except ValueError as exc:
            fail(f"{file} is not JSON: {exc}")
        except RecursionError:  # json's parser recurses: some thousand unclosed [ or { end it
            fail(f"{file}: its JSON is nested too deeply to be a schema definition")
        with open_store(db, create=True) as store:
            try:
                extension = parse_extension(definition, store.registry, resource_type, required=required)
            except InvalidSchemaDefinition as exc:
                fail(f"{file}: {exc.detail}")
            try:
                store.add_schema_extension(extension)
            except SchemaExtensionRemoving as exc:
                fail(f"{exc}; to finish its removal: {finish_command(exc.urn)}")
            except RequiredExtensionMissing as exc:
                fail(str(exc))
        names = ", ".join(a.name for a in extension.schema.attributes)
        kind = "required" if extension.required else "optional"
        typer.echo(f"Declared the {kind} extension of {extension.resource_type}: {names}.")
        typer.echo(f"Note: {APPLIED}.")
        typer.echo(extension.urn)

    @schema_app.command("list")
    def schema_list(db: DbOption = None) -> None:
        """List the declared extension schemas: URN, resource type, required or optional, attributes,
        and for one whose removal was stopped, since when it is being removed."""
        with open_store(db) as store:
            extensions = store.schema_extensions()
            removals = store.schema_removals()
        for ext in extensions:
            names = ",".join(a.name for a in ext.schema.attributes)
            since = removals.get(ext.urn)
            removing = f"\tbeing removed since {since.isoformat()}" if since else ""
            typer.echo(
                f"{ext.urn}\t{ext.resource_type}\t{'required' if ext.required else 'optional'}\t{names}"
                + removing
            )

    @schema_app.command("show")
    def schema_show(
        urn: Annotated[str, typer.Argument(help="The extension's URN (any case).")],
        db: DbOption = None,
    ) -> None:
        """Print a declared extension schema as /Schemas shows it."""
        with open_store(db) as store:
            extensions = store.schema_extensions()
        found = next((e for e in extensions if e.urn.lower() == urn.lower()), None)
        if found is None:
            fail(f"no extension schema {urn} is declared")
        typer.echo(json.dumps(found.schema.to_json(), indent=2))

    @schema_app.command("remove")
    def schema_remove(
        urn: Annotated[str, typer.Argument(help="The extension's URN (any case).")],
        db: DbOption = None,
        purge: Annotated[
            bool,
            typer.Option(
                "--purge", help="Also remove its values from every stored resource that holds some."
            ),
        ] = False,
    ) -> None:
        """Remove a declared extension schema (refused while stored resources hold its values).

        With --purge, running servers stop showing and taking its values within seconds, and the
        values go in short steps, so that the servers keep writing meanwhile. A purge that was
        stopped (Ctrl-C, SIGTERM, a crash) leaves the schema marked as being removed: run this
        again to finish it."""
        from provisor.store.base import PurgeProgress, SchemaExtensionInUse

        def described(step: PurgeProgress) -> str:
            return (
                f"removing {step.urn}: {step.checked:,} of {step.total:,} resources checked, "
                f"{step.purged:,} rewritten"
            )

        progress = progress_on_stderr(described)

        with terminated_as_interrupted() as signals:
            try:
                with open_store(db) as store:
                    try:
                        purged = store.remove_schema_extension(urn, purge=purge, progress=progress)
                    except SchemaExtensionInUse as exc:
                        fail(
                            f"{exc.holders} stored resource(s) hold values of {exc.urn}; pass --purge "
                            "to remove those values with the schema (each such resource gets a new version)"
                        )
            except KeyboardInterrupt:
                fail(interrupted_removal(db, urn), interrupted_status(signals))
        typer.echo(f"Removed {urn}" + (f" and its values from {purged} resource(s)." if purged else "."))
        if not purge:  # a purge waited for them
            typer.echo(f"Note: {APPLIED}.")
