"""The `ledger` command: one entry point for operators, support staff, auditors and the demo.

This module assembles the command from its audiences' modules (`support`, `operations`,
`audit`, `bench`, `chaos`) and holds the commands everyone uses: `stack`, `run`, `publish`,
`schemas`, `demo`. Every command reads `Settings` from the environment once, finds the services
once (the composition root, `ledger.entrypoints.bootstrap`), and turns a `LedgerError`, or a
database or broker that does not answer, into one line on stderr and exit status 1 (2 for bad
input, 4 for "no such ..."), never a traceback.

Nothing heavy is imported until a command runs (see `console`): `ledger --help` answers in
about the time Python takes to start.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, NoReturn

import typer

from ledger.entrypoints.cli.console import (
    Commands,
    Ending,
    command_group,
    err,
    out,
    print_document,
    quiet_settings,
    settings,
)
from ledger.entrypoints.cli.publish import publish_command
from ledger.entrypoints.names import Service, WorkerName

if TYPE_CHECKING:
    from ledger.stack.services import ServiceStatus


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # noqa: PLC0415

        out().print(f"ledger {version('enrollment-ledger')}")
        raise typer.Exit


class _Ledger(Commands):
    """The `ledger` command. Each audience's commands are in a module of their own, loaded only
    when one of them runs: support staff's (`support`), operators' (`operations`, `bench`,
    `chaos`) and auditors' (`audit`). A new group goes here; a new command of a group goes in
    its module."""

    lazy: ClassVar[dict[str, str]] = {
        "learner": "ledger.entrypoints.cli.support:learner_app",
        "certificate": "ledger.entrypoints.cli.support:certificate_app",
        "stats": "ledger.entrypoints.cli.support:stats_app",
        "projections": "ledger.entrypoints.cli.operations:projections_app",
        "rejections": "ledger.entrypoints.cli.operations:rejections_app",
        "shards": "ledger.entrypoints.cli.operations:shards_app",
        "audit": "ledger.entrypoints.cli.audit:audit_app",
        "tokens": "ledger.entrypoints.cli.tokens:tokens_app",
        "issuer": "ledger.entrypoints.cli.issuer:issuer_app",
        "export": "ledger.entrypoints.cli.export:export_app",
        "bench": "ledger.entrypoints.cli.bench:bench_app",
        "chaos": "ledger.entrypoints.cli.chaos:chaos_app",
    }


app = command_group(
    "The enrollment ledger: system of record for MOOC specializations.", cls=_Ledger
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """The enrollment ledger: system of record for MOOC specializations."""
    Ending.fast = False  # a command is about to run: it ends the usual way unless it only asks


stack_app = command_group("Start, stop and inspect PostgreSQL and Kafka.")
app.add_typer(stack_app, name="stack")
app.command("publish")(publish_command)

OnlyService = Annotated[
    Service | None, typer.Argument(help="Only this service (default: both).", metavar="SERVICE")
]


def _print_status(statuses: list[ServiceStatus]) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table(show_header=True)
    for column in ("service", "state", "where", "detail"):
        table.add_column(column)
    for s in statuses:
        state = "[green]running[/green]" if s.running else "[red]stopped[/red]"
        table.add_row(str(s.service), state, s.where, s.detail)
    out().print(table)


@stack_app.command("up")
def stack_up(
    service: OnlyService = None,
    brokers: Annotated[
        int | None,
        typer.Option(
            help="Kafka nodes when the state directory's Kafka is first made: 1 (the default) "
            "or 3, a KRaft cluster keeping every topic on three nodes, two in sync.",
        ),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=4,
            help="Embedded PostgreSQL servers, one a shard of the event store, when the state "
            "directory's store is first made (docs/sharding.md).",
        ),
    ] = None,
) -> None:
    """Start PostgreSQL and Kafka (unless given by the environment), create the tables and
    topics, and the credentials' signing key if there is none."""
    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from ledger.stack import services  # noqa: PLC0415

    found = settings()
    statuses = services.up(found, service, waiting=err().print, brokers=brokers, shards=shards)
    where = bootstrap.services(found)
    if service in (None, Service.POSTGRES):
        bootstrap.prepare_database(where)
    if service in (None, Service.KAFKA):
        created = bootstrap.prepare_topics(found, where)
        if created:
            out().print(f"created topics: {', '.join(created)}")
        out().print(bootstrap.describe_replication(found, where))
    if service is None:
        from ledger.credentials.issuer import Keys  # noqa: PLC0415

        keys = Keys(found.issuer_keys)
        if not keys.all():  # the embedded defaults issue credentials out of the box
            out().print(f"made the issuer's signing key in {keys.add().path.parent}")
    _print_status(statuses)


@stack_app.command("down")
def stack_down(service: OnlyService = None) -> None:
    """Stop what `ledger stack up` started; data stays in the state directory."""
    from ledger.stack import services  # noqa: PLC0415

    _print_status(services.down(settings(), service))


@stack_app.command("status")
def stack_status() -> None:
    """Show what runs where."""
    from ledger.stack import services  # noqa: PLC0415

    statuses = services.status(settings())
    _print_status(statuses)
    if not all(s.running for s in statuses):
        raise typer.Exit(3)


def _bridge_kind(ctx: typer.Context, kind: str | None) -> str | None:
    """Checked as the command line is read: a bridge's name follows `bridge`, and only it."""
    worker = ctx.params.get("worker")
    if worker is WorkerName.BRIDGE and kind not in (None, "openedx"):
        raise typer.BadParameter(f"no bridge {kind!r}: the bridges are: openedx")
    if worker is not WorkerName.BRIDGE and kind is not None:
        raise typer.BadParameter(
            f"got an unexpected extra argument {kind!r} (a bridge's name follows `bridge`)"
        )
    return kind


@app.command("run")
def run(
    worker: Annotated[
        WorkerName,
        typer.Argument(
            help="Which worker (default: the three workers; api: HTTP; bridge: a bridge; "
            "xapi: statements into an LRS).",
            metavar="WORKER",
        ),
    ] = WorkerName.ALL,
    kind: Annotated[
        str | None,
        typer.Argument(
            help="Which bridge (with `bridge`): openedx.", metavar="BRIDGE", callback=_bridge_kind
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            metavar="N",
            help="Processes for the intake and the projections (default: "
            "LEDGER_INTAKE_PROCESSES, LEDGER_PROJECTION_PROCESSES, 1 each).",
        ),
    ] = None,
) -> None:
    """Run the intake, relay and projection workers (or the HTTP API, a bridge, the xAPI
    follower) until SIGINT/SIGTERM."""
    from ledger.entrypoints.runner import run as run_workers  # noqa: PLC0415

    raise typer.Exit(run_workers(settings(), worker, processes))


@app.command("capacity")
def capacity(
    learners: Annotated[int, typer.Option(min=1, help="Learners on the platform.")] = 150_000_000,
    messages_per_learner_year: Annotated[
        float, typer.Option(min=0.1, help="Inbound messages a learner causes in a year.")
    ] = 20.0,
    peak_factor: Annotated[
        float, typer.Option(min=1.0, help="The busiest hour's traffic over an average hour's.")
    ] = 6.0,
    years: Annotated[int, typer.Option(min=1, help="Years of events the shards hold.")] = 5,
    shard_storage_tb: Annotated[
        float, typer.Option(min=0.01, help="What one PostgreSQL server may hold, in TB.")
    ] = 4.0,
    inputs: Annotated[
        Path | None,
        typer.Option(
            help="The measured rates (`ledger bench shards` writes them; default: "
            "STATE_DIR/capacity-inputs.json)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The plan as JSON.")] = False,
) -> None:
    """Shards, partitions, brokers, projection processes and storage a year for a platform of
    this size, from rates measured on this machine (docs/capacity.md)."""
    import json  # noqa: PLC0415

    from ledger.entrypoints.capacity import Measured, Traffic, plan  # noqa: PLC0415
    from ledger.errors import LedgerError  # noqa: PLC0415

    path = inputs or settings().state_path / "capacity-inputs.json"
    if not path.is_file():
        raise LedgerError(f"{path}: no measured rates; run `ledger bench shards` first")
    measured = Measured(**json.loads(path.read_text())["measured"])
    traffic = Traffic(
        learners, messages_per_learner_year, peak_factor, years, shard_storage_tb * 1e12
    )
    result = plan(traffic, measured)
    if as_json:
        print_document(
            {"traffic": vars(traffic), "measured": vars(measured), "plan": result.as_dict()}
        )
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"capacity for {learners:,} learners (rates from {path})")
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, value in (
        ("inbound messages a year", f"{result.messages_per_year:,.0f}"),
        ("events a year", f"{result.events_per_year:,.0f}"),
        ("peak commands/s", f"{result.peak_commands_per_second:,.0f}"),
        ("peak events/s", f"{result.peak_events_per_second:,.0f}"),
        ("shards the peak needs", str(result.shards_for_peak)),
        (f"shards {years} years of events need", str(result.shards_for_storage)),
        ("shards (PostgreSQL servers, a power of two)", str(result.shards)),
        ("partitions per topic", str(result.partitions)),
        ("projection processes", str(result.projection_processes)),
        ("Kafka brokers", str(result.brokers)),
        (
            "PostgreSQL storage a year (all shards)",
            f"{result.postgres_bytes_per_year / 1e12:,.2f} TB",
        ),
        ("Kafka storage a year (3 copies)", f"{result.kafka_bytes_per_year / 1e12:,.2f} TB"),
    ):
        table.add_row(name, value)
    out().print(table)


@app.command("schemas")
def schemas_command(
    root: Annotated[Path, typer.Option(help="Where the schemas live.", metavar="DIR")] = Path(
        "schemas"
    ),
    check: Annotated[bool, typer.Option("--check", help="Only report drift.")] = False,
) -> None:
    """Write (or --check) the JSON Schemas and examples of every message type."""
    from ledger.entrypoints import schemas  # noqa: PLC0415

    if check:
        problems = schemas.drift(root)
        for problem in problems:
            err().print(problem)
        if problems:
            err().print("run `ledger schemas` to regenerate")
            raise typer.Exit(1)
        out().print(f"{root}: in step with the code")
        return
    written = schemas.write(root)
    out().print(f"wrote {len(written)} files under {root}")


@app.command("demo")
def demo(
    learners: Annotated[
        int, typer.Option(min=1, max=100_000, metavar="N", help="Learners in the cohort.")
    ] = 2_000,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the simulated cohort.")] = 2014,
) -> None:
    """Run the launch catalog and a simulated cohort through the real pipeline."""
    import os  # noqa: PLC0415

    from ledger.entrypoints.demo.run import run_demo  # noqa: PLC0415

    # The demo talks to a person: worker logs would bury its progress bars, so only problems
    # are logged unless LEDGER_LOG_LEVEL asks for more.
    found = settings() if "LEDGER_LOG_LEVEL" in os.environ else quiet_settings()
    run_demo(found, learners, seed, out())


def _unreachable(error: BaseException) -> str | None:
    """What to say when PostgreSQL or Kafka does not answer, in one line; None for any other
    error. Checked by name so that no command imports psycopg just to catch its errors."""
    names = {cls.__name__ for cls in type(error).__mro__}
    module = type(error).__module__
    if "OperationalError" in names and module.startswith(("psycopg", "eventsourcing")):
        first = " ".join(str(error).split()) or type(error).__name__
        return (
            f"PostgreSQL did not answer ({first}): check LEDGER_DATABASE_URL, or run "
            "`ledger stack up` (`ledger stack status` says what runs)"
        )
    return None


def main() -> None:
    """Console-script entry point: a clear one-line message and exit status for every error a
    user can cause or meet."""
    import gc  # noqa: PLC0415

    from ledger.memory import GC_THRESHOLDS  # noqa: PLC0415

    # Every command reads or writes thousands of short-lived objects; with Python's default
    # thresholds the collector's full passes made `audit history` of 1,000 events swing from
    # 67 ms to 180 ms (`ledger bench audit`). (Workers also freeze what they start with: see
    # `tune_garbage_collector`; a command's life is too short for that to pay.)
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        app()
    except SystemExit as done:
        if Ending.fast:
            _end_now(done.code)
        raise
    except Exception as error:
        from ledger.errors import LedgerError  # noqa: PLC0415

        message = f"ledger: {error}" if isinstance(error, LedgerError) else None
        message = message or _unreachable(error)
        if message is None:
            raise
        err().print(message, markup=False)
        sys.exit(1)


def _end_now(code: str | int | None) -> NoReturn:
    """End a command that only printed an answer, without Python's teardown (see `Ending`)."""
    import os  # noqa: PLC0415

    if isinstance(code, str):
        sys.stderr.write(code + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":  # `python -m ledger.entrypoints.cli.main`: how `ledger chaos` re-runs
    main()
