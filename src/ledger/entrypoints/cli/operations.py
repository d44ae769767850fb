"""Operators' commands: how far behind each read model is, rebuilding one, and the messages the
intake could not accept (list, show, retry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ledger.entrypoints.cli.console import (
    JsonOption,
    RebuildProcesses,
    command_group,
    err,
    out,
    print_document,
    print_lines,
    services,
    settings,
)

if TYPE_CHECKING:
    from ledger.application import Ledger

projections_app = command_group("The read models: lag and rebuilds.")
rejections_app = command_group("Messages the intake could not accept, kept with the reason.")
shards_app = command_group("The event store's shards: moving to more of them.")


@projections_app.command("status")
def projections_status(as_json: JsonOption = False) -> None:
    """Lag of each read model, per partition of ledger.events."""
    from rich.table import Table  # noqa: PLC0415 - imported when the command runs

    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from projections.status import projection_lag  # noqa: PLC0415

    found = settings()
    where = services(found)
    with bootstrap.connect(where) as conn:
        lags = projection_lag(conn, where.kafka_bootstrap, found.events_topic)
    if as_json:
        print_lines({**vars(lag), "behind": lag.behind} for lag in lags)
        return
    table = Table(title=f"Read models on {found.events_topic}")
    for column in ("read model", "schema", "partition", "applied up to", "end", "behind"):
        table.add_column(column, justify="left" if column in ("read model", "schema") else "right")
    for lag in lags:
        table.add_row(
            lag.projection,
            lag.schema,
            str(lag.partition),
            f"{lag.done:,}",
            f"{lag.end:,}",
            f"{lag.behind:,}",
        )
    out().print(table)


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[
        str | None, typer.Argument(help="One read model (default: all of them).")
    ] = None,
    processes: RebuildProcesses = None,
) -> None:
    """Rebuild read models from the start of ledger.events into fresh tables; switch over only
    once caught up, so queries never see a half-built model."""
    from rich.progress import Progress, TaskID  # noqa: PLC0415

    from projections.catalog import READ_MODELS, by_name  # noqa: PLC0415
    from projections.rebuild import processes_for, rebuild_models  # noqa: PLC0415

    found = settings()
    try:
        models = [by_name(name)] if name else list(READ_MODELS)
    except KeyError as error:
        err().print(str(error.args[0]), markup=False)
        raise typer.Exit(2) from None
    where = services(found)
    with Progress(console=err(), transient=True) as bar:
        task = bar.add_task(f"rebuilding {', '.join(m.name for m in models)}", total=None)

        def advance(done: int, total: int, task: TaskID = task, bar: Progress = bar) -> None:
            bar.update(task, completed=done, total=total)

        # One pass over ledger.events for all of them: the topic is read and decoded once.
        results = rebuild_models(
            where.database_url,
            where.kafka_bootstrap,
            found.events_topic,
            models,
            switch=True,
            progress=advance,
            processes=processes_for(where.kafka_bootstrap, found.events_topic, processes),
        )
    first = results[0]
    rate = first.records / first.seconds if first.seconds else 0.0
    out().print(
        f"{len(models)} read model(s) rebuilt in one pass over {first.records:,} records of "
        f"{found.events_topic} in {first.seconds:.1f} s ({rate:,.0f} records/s):"
    )
    for model, result in zip(models, results, strict=True):
        replaced = f", replacing {result.replaced.schema}" if result.replaced else ""
        out().print(
            f"  {model.name}: {result.events:,} events applied; live in "
            f"{result.generation.schema}{replaced}"
        )


def _shards() -> list[Ledger]:
    """A `Ledger` on each shard of the event store: each keeps its partitions' rejections."""
    from ledger.entrypoints import bootstrap  # noqa: PLC0415

    return bootstrap.open_shards(services(settings()))


def _close(shards: list[Ledger]) -> None:
    for shard in shards:
        shard.close()


@rejections_app.command("list")
def rejections_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The newest rejected messages, with their reason."""
    from rich.table import Table  # noqa: PLC0415

    from ledger.entrypoints.rejections import newest  # noqa: PLC0415

    shards = _shards()
    try:
        rows = newest(shards, limit, reason)
    finally:
        _close(shards)
    if as_json:
        from ledger.entrypoints.rejections import as_json as rejection_json  # noqa: PLC0415

        print_lines(rejection_json(r) for r in rows)
        return
    table = Table(show_header=True)
    for column in ("id", "rejected", "reason", "message", "origin", "retries"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r.rejection_id),
            f"{r.rejected_at:%Y-%m-%d %H:%M:%S}",
            r.reason,
            r.message[:80],
            f"{r.topic}/{r.partition}/{r.offset}",
            str(r.retries),
        )
    out().print(table)


@rejections_app.command("show")
def rejections_show(rejection_id: int, as_json: JsonOption = False) -> None:
    """One rejected message: the reason, and the original bytes and headers."""
    from ledger.entrypoints import rejections  # noqa: PLC0415

    shards = _shards()
    try:
        rejection = rejections.as_json(rejections.one(shards, rejection_id))
    finally:
        _close(shards)
    if as_json:
        print_document(rejection)
        return
    for key, value in rejection.items():
        out().print(f"[bold]{key}[/bold]: {value}", highlight=False)


@rejections_app.command("retry")
def rejections_retry(rejection_id: int) -> None:
    """Re-submit a rejected message, unchanged, onto ledger.intake (once its cause is fixed)."""
    from ledger.broker import Producer  # noqa: PLC0415
    from ledger.entrypoints import bootstrap, rejections  # noqa: PLC0415

    found = settings()
    where = services(found)
    shards = bootstrap.open_shards(where)
    try:
        producer = Producer(where.kafka_bootstrap, client_id="ledger-retry")
        try:
            rejections.retry(shards, producer.send_all, found.intake_topic, rejection_id)
        finally:
            producer.close()
    finally:
        _close(shards)
    out().print(f"re-submitted rejection {rejection_id} to {found.intake_topic}")


@shards_app.command("double")
def shards_double(
    new: Annotated[
        list[str],
        typer.Argument(help="A PostgreSQL URL for each new shard (as many as there are now)."),
    ],
    as_json: JsonOption = False,
) -> None:
    """From N shards to 2N (docs/sharding.md): with the pipeline stopped after catching up,
    copy each moving learner's stream and the catalog to the new shards, verify the copies
    row for row, then delete the moved streams; print the new LEDGER_SHARDS."""
    from ledger.entrypoints.migration import double  # noqa: PLC0415

    found = settings()
    where = services(found)
    doubled = double(found, where, new, lambda what: err().print(what, markup=False))
    if as_json:
        print_document(vars(doubled))
        return
    for n, (learners, events, catalog) in enumerate(
        zip(doubled.learners, doubled.events, doubled.catalog_events, strict=True),
        doubled.old + 1,
    ):
        out().print(
            f"shard {n}: {learners:,} learners ({events:,} events) and the catalog "
            f"({catalog:,} events), verified row for row, then deleted from shard {n - doubled.old}"
        )
    out().print(f"now set LEDGER_SHARDS={doubled.shards!r} and start the pipeline", markup=False)
