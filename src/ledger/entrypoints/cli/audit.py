"""Auditors' commands: a learner's history (as the ledger knew it at any moment), an export an
outsider can check with nothing but the file, that check, and the whole ledger verified against
itself (hash chains, the event log, the read models)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ledger.entrypoints.cli.console import (
    JsonOption,
    LearnerArg,
    RebuildProcesses,
    command_group,
    err,
    not_found,
    out,
    print_document,
    record_read,
    services,
    settings,
)

audit_app = command_group("Histories as the ledger knew them, and proof nothing was altered.")


def _parse_time(text: str) -> datetime:
    from ledger.domain.timeline import parse_moment  # noqa: PLC0415
    from ledger.errors import LedgerError  # noqa: PLC0415

    try:
        return parse_moment(text)
    except ValueError as error:
        raise LedgerError(f"--as-of {error}") from None


@audit_app.command("history")
def audit_history(
    learner_id: LearnerArg,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Only what was recorded by then (ISO 8601; UTC if no zone)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A learner's whole history, oldest first; with --as-of, as the ledger knew it then."""
    from ledger.audit.history import UnknownLearnerError, learner_history  # noqa: PLC0415
    from ledger.entrypoints import bootstrap  # noqa: PLC0415

    found = settings()
    moment = _parse_time(as_of) if as_of else None
    where = services(found)
    with bootstrap.connect(where) as conn:
        record_read(conn, learner_id, "ledger audit history")
    ledger = bootstrap.open_learner_shard(found, where, learner_id)
    try:
        history = learner_history(ledger, learner_id, moment)
    except UnknownLearnerError as error:
        raise not_found(str(error)) from None
    finally:
        ledger.close()
    if as_json:
        print_document(history)
        return
    from ledger.entrypoints.views import render_history  # noqa: PLC0415

    render_history(out(), history)


@audit_app.command("export")
def audit_export(
    learner_id: LearnerArg,
    to: Annotated[
        Path | None, typer.Option("--to", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """A learner's history as JSON lines of CloudEvents with the hash chain, for `audit check`."""
    from ledger.audit.export import NothingToExportError, export_lines  # noqa: PLC0415
    from ledger.entrypoints import bootstrap  # noqa: PLC0415

    found = settings()
    where = services(found)
    with bootstrap.connect(where) as conn:
        record_read(conn, learner_id, "ledger audit export")
    ledger = bootstrap.open_learner_shard(found, where, learner_id)
    try:
        lines = list(export_lines(ledger, learner_id))
    except NothingToExportError as error:
        raise not_found(str(error)) from None
    finally:
        ledger.close()
    text = "\n".join(lines) + "\n"
    if to is None:
        sys.stdout.write(text)
    else:
        to.write_text(text, encoding="utf-8")
        err().print(f"wrote {len(lines) - 1} events of {learner_id} to {to}", markup=False)


@audit_app.command("check")
def audit_check(
    file: Annotated[Path, typer.Argument(help="An export written by `ledger audit export`.")],
) -> None:
    """Check an export on its own (no database, no broker): every hash, link and line."""
    from ledger.audit.export import check_export  # noqa: PLC0415
    from ledger.errors import LedgerError  # noqa: PLC0415

    if not file.is_file():
        raise LedgerError(f"{file}: no such file")
    lines = file.read_text(encoding="utf-8").splitlines()
    problems = check_export(lines)
    if not problems:
        out().print(
            f"{file}: intact ({sum(1 for x in lines if x.strip()) - 1} events, chain holds)"
        )
        return
    for problem in problems:
        out().print(f"{problem.kind}: {problem.message}", markup=False)
    err().print(f"{file}: {len(problems)} problem(s)")
    raise typer.Exit(1)


@audit_app.command("verify")
def audit_verify(
    learner: Annotated[str | None, typer.Option("--learner", help="Only this learner.")] = None,
    as_json: JsonOption = False,
    processes: RebuildProcesses = None,
) -> None:
    """Check every hash chain, the event log against the store, and the read models against a
    rebuild from the log; name every mismatch; exit 1 on any."""
    from rich.progress import Progress, TaskID  # noqa: PLC0415

    from ledger.audit.verify import verify  # noqa: PLC0415
    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from projections.rebuild import processes_for  # noqa: PLC0415

    found = settings()
    where = services(found)
    ledger, *more_shards = bootstrap.open_shards(where)
    try:
        with Progress(console=err(), transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def advance(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(what, total=total or None)
                bar.update(tasks[what], completed=done, total=total or None)

            count = processes_for(where.kafka_bootstrap, found.events_topic, processes)
            report = verify(
                ledger, found, where, learner, advance, processes=count, more_shards=more_shards
            )
    finally:
        for shard in (ledger, *more_shards):
            shard.close()
    if as_json:
        print_document(
            {
                "ok": report.ok,
                "events": report.events,
                "learners": report.learners,
                "records": report.records,
                "republished": report.republished,
                "pending": report.pending,
                "seconds": round(report.seconds, 3),
                "events_per_second": round(report.events_per_second),
                "mismatches": [vars(m) for m in report.mismatches],
            }
        )
    else:
        for m in report.mismatches:
            out().print(f"[red]{m.check}[/red] {m.message}", highlight=False)
        out().print(
            f"{'OK' if report.ok else 'MISMATCHES: ' + str(len(report.mismatches))}: "
            f"{report.events:,} events of {report.learners:,} learner streams, "
            f"{report.records:,} records on {found.events_topic} "
            f"({report.republished:,} identical republished copies, {report.pending:,} not "
            f"relayed yet), read models rebuilt and compared; "
            f"{report.seconds:.1f} s, {report.events_per_second:,.0f} events/s"
        )
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("reads")
def audit_reads(
    learner_id: LearnerArg,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 500,
    as_json: JsonOption = False,
) -> None:
    """Who read a learner's data, newest first: through the API, the console or this CLI."""
    from rich.table import Table  # noqa: PLC0415

    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from ledger.entrypoints.cli.console import print_lines  # noqa: PLC0415
    from ledger.entrypoints.staff.reads import reads_of  # noqa: PLC0415

    with bootstrap.connect(services(settings())) as conn:
        found = reads_of(conn, learner_id, limit)
    if as_json:
        print_lines(
            {
                "read_at": r.read_at.isoformat(),
                "reader": r.reader,
                "token_id": r.token_id,
                "via": r.via,
                "what": r.what,
            }
            for r in found
        )
        return
    table = Table(title=f"Who read {learner_id}'s data")
    for column in ("when", "who", "via", "what"):
        table.add_column(column)
    for r in found:
        table.add_row(f"{r.read_at:%Y-%m-%d %H:%M:%S %Z}", r.reader, r.via, r.what)
    out().print(table)
