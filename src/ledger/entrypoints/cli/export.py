"""Exports to the ledger's neighbours: `ledger export xapi` (statements for a Learning Record
Store)."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.entrypoints.cli.console import (
    JsonOption,
    checked_id,
    command_group,
    err,
    out,
    print_document,
    services,
    settings,
)

export_app = command_group("Exports to the ledger's neighbours: xAPI statements for an LRS.")


@export_app.command("xapi")
def export_xapi(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="An LRS's xAPI base URL (https://lrs/xAPI; Basic auth from "
            "LEDGER_XAPI_USERNAME / LEDGER_XAPI_PASSWORD), or a file for JSON lines.",
            metavar="URL|FILE",
        ),
    ],
    learner: Annotated[
        str | None,
        typer.Option("--learner", help="Only this learner's statements.", callback=checked_id),
    ] = None,
    since: Annotated[
        int,
        typer.Option(
            "--since", min=0, metavar="POSITION", help="Only events after this store position."
        ),
    ] = 0,
    as_json: JsonOption = False,
) -> None:
    """The ledger's events as xAPI 1.0.3 statements (enrolled, passed, earned, revoked,
    unenrolled), to an LRS or a file; a whole export to an LRS resumes where the last ended."""
    from rich.progress import Progress  # noqa: PLC0415

    from bridges.xapi.export import Target, export  # noqa: PLC0415

    found = settings()
    password = found.xapi_password.get_secret_value() if found.xapi_password else None
    target = Target(to, found.xapi_username, password)
    with Progress(console=err(), transient=True) as bar:
        task = bar.add_task("reading ledger.events", total=None)
        result = export(
            found,
            services(found),
            target,
            learner=learner,
            since=since,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_document(vars(result))
        return
    resumed = " (resumed where the last export ended)" if result.resumed else ""
    out().print(
        f"{result.statements:,} statements from {result.events:,} events{resumed}: "
        f"{result.stored:,} stored, {result.known:,} already there, "
        f"{len(result.conflicts):,} conflicting, in {result.seconds:.1f} s",
        markup=False,
    )
    if result.conflicts:
        err().print(
            "the LRS holds other statements under these ids: " + ", ".join(result.conflicts[:10]),
            markup=False,
        )
        raise typer.Exit(1)
