"""Operators' fault matrix: `ledger chaos` and `ledger chaos fuzz`, their options and tables
(the machinery is in `ledger.entrypoints.chaos`).

Both start by running themselves again in a network namespace of their own
(`chaos.environment`); everything else happens in there.
"""

from __future__ import annotations

import faulthandler
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.entrypoints.cli.console import command_group, err, out

if TYPE_CHECKING:
    from rich.console import Console

    from ledger.settings import Services, Settings

chaos_app = command_group(
    "Faults injected into the real pipeline, compared with a fault-free run; and a fuzzer.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _outside_or_inside(argv: list[str], keep: bool) -> Settings | None:
    """Outside the namespace: run again inside it and exit with its status. Inside: the
    settings of the chaos stack, which is started (and stopped when the process ends)."""
    from ledger.entrypoints.chaos import environment  # noqa: PLC0415 - only for this command
    from ledger.logs import configure_logging  # noqa: PLC0415
    from ledger.settings import Settings  # noqa: PLC0415

    settings = Settings.from_env()
    if not environment.inside():
        raise typer.Exit(environment.run_inside(argv, settings.state_path, keep=keep))
    configure_logging(settings.log_format, "warning")
    # `kill -USR1 PID` prints what every thread of the run is doing (PID as seen outside).
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    return settings


@chaos_app.callback()
def chaos(
    ctx: typer.Context,
    runs: Annotated[int, typer.Option(min=1, help="Runs of each fault.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the load and of when each fault strikes.")] = 1,
    faults: Annotated[str, typer.Option(help="Comma-separated fault names, or `all`.")] = "all",
    learners: Annotated[int, typer.Option(min=10, max=5000, help="Learners in the load.")] = 150,
    window: Annotated[
        float, typer.Option(min=1.0, help="Seconds over which the load is sent.")
    ] = 8.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="The table as one JSON document on stdout.")
    ] = False,
    keep: Annotated[
        bool, typer.Option(help="Keep the chaos state directory (logs, data) afterwards.")
    ] = False,
    kafka_debug: Annotated[
        bool, typer.Option(help="Each worker also writes kafka-python's debug log (with --keep).")
    ] = False,
    brokers: Annotated[
        int,
        typer.Option(
            help="Kafka nodes of the chaos stack: 1, or 3 (a replicated cluster, which adds the "
            "fault of one node killed)."
        ),
    ] = 1,
    shards: Annotated[
        int,
        typer.Option(
            min=1,
            max=2,
            help="Shards of the chaos stack's event store: 1, or 2 (two PostgreSQL servers, "
            "which adds the fault of one killed).",
        ),
    ] = 1,
) -> None:
    """Every fault, --runs times, through the real pipeline, against a fault-free run."""
    if ctx.invoked_subcommand is not None:
        return
    from ledger.broker import replication  # noqa: PLC0415
    from ledger.entrypoints.chaos.faults import BY_NAME, FAULTS  # noqa: PLC0415
    from ledger.entrypoints.chaos.matrix import Options, RunResult, run_matrix  # noqa: PLC0415

    if brokers not in (1, 3):
        raise typer.BadParameter("the chaos stack runs 1 or 3 Kafka nodes", param_hint="--brokers")
    chosen = (
        [f for f in FAULTS if f.min_brokers <= brokers and f.min_shards <= shards]
        if faults == "all"
        else []
    )
    if faults != "all":
        for name in faults.split(","):
            if name.strip() not in BY_NAME:
                raise typer.BadParameter(
                    f"no fault {name!r}; faults: {', '.join(BY_NAME)}", param_hint="--faults"
                )
            fault = BY_NAME[name.strip()]
            if fault.min_brokers > brokers:
                raise typer.BadParameter(
                    f"{fault.name} needs --brokers {fault.min_brokers}", param_hint="--faults"
                )
            if fault.min_shards > shards:
                raise typer.BadParameter(
                    f"{fault.name} needs --shards {fault.min_shards}", param_hint="--faults"
                )
            chosen.append(fault)
    settings = _outside_or_inside(sys.argv[1:], keep)
    assert settings is not None  # noqa: S101 - outside, the call above exits
    console = err() if as_json else out()

    def report(result: RunResult) -> None:
        status = "ok" if result.clean else "FAILED"
        recovery = "-" if result.recovery_s is None else f"{result.recovery_s:.1f} s"
        console.print(
            f"{result.fault} run {result.run}: {result.messages} messages, recovered in "
            f"{recovery}, {result.stalls} stalls, {status}; " + "; ".join(result.story),
            markup=False,
        )
        for note in result.notes:
            console.print(f"    {note}", markup=False)

    with _chaos_stack(settings, console, brokers, shards) as services:
        options = Options(
            learners=learners,
            seed=seed,
            window_s=window,
            logs=settings.state_path / "logs",
            kafka_debug=kafka_debug,
        )
        summaries, results = run_matrix(settings, services, chosen, runs, options, report)
        kept = replication(services.kafka_bootstrap, settings.topics)
    if as_json:
        document = {
            "seed": seed,
            "runs": runs,
            "learners": learners,
            "brokers": brokers,
            "shards": shards,
            "replication": {name: asdict(r) for name, r in kept.items()},
            "faults": [s.as_dict() for s in summaries],
            "failed_runs": [r.__dict__ for r in results if not r.clean],
        }
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        _print_table(
            f"ledger chaos --runs {runs} --seed {seed} ({learners} learners)",
            [s.as_dict() for s in summaries],
        )
    bad = [r for r in results if not r.clean]
    raise typer.Exit(1 if bad else 0)


@contextmanager
def _chaos_stack(
    settings: Settings, console: Console, brokers: int = 1, shards: int = 1
) -> Iterator[Services]:
    """The chaos stack's PostgreSQL (`shards` servers) and Kafka (`brokers` nodes), up for the
    block's length."""
    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from ledger.entrypoints.chaos.environment import set_loopback  # noqa: PLC0415
    from ledger.errors import LedgerError  # noqa: PLC0415
    from ledger.stack import services  # noqa: PLC0415

    set_loopback(True)
    console.print(f"chaos stack in {settings.state_path} (own network namespace)")
    services.up(settings, brokers=brokers, shards=shards)
    try:
        found = bootstrap.services(settings)
        bootstrap.prepare_database(found)
        bootstrap.prepare_topics(settings, found)  # as `ledger stack up` does; runs use their own
        console.print(bootstrap.describe_replication(settings, found), markup=False)
        yield found
    finally:
        set_loopback(True)
        try:
            services.down(settings)
        except LedgerError as error:
            console.print(f"stopping the chaos stack: {error}", markup=False)


def _print_table(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table  # noqa: PLC0415

    if not rows:
        return
    table = Table(title=title)
    columns = list(rows[0])
    for column in columns:
        table.add_column(column.replace("_", " "), justify="left" if column == "fault" else "right")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    out().print(table)


@chaos_app.command("fuzz")
def fuzz(
    messages: Annotated[
        int, typer.Option(min=100, help="Messages to send, hostile and valid.")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the messages.")] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="The result as one JSON document on stdout.")
    ] = False,
    keep: Annotated[
        bool, typer.Option(help="Keep the chaos state directory (logs, data) afterwards.")
    ] = False,
) -> None:
    """Hostile messages of every kind among valid ones, then sentinels: each is accounted for."""
    from ledger.entrypoints.chaos.fuzz import run_fuzz  # noqa: PLC0415

    settings = _outside_or_inside(sys.argv[1:], keep)
    assert settings is not None  # noqa: S101 - outside, the call above exits
    console = err() if as_json else out()
    with _chaos_stack(settings, console) as services:
        result = run_fuzz(settings, services, messages, seed, settings.state_path / "logs", console)
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
    else:
        _print_table(f"ledger chaos fuzz --messages {messages} --seed {seed}", [result.table_row()])
        from rich.table import Table  # noqa: PLC0415

        table = Table(title="kinds sent, and what became of them")
        columns = ("sent", "api 4xx", "accepted", "duplicate", "rejected", "missing")
        for column in ("kind", *columns):
            table.add_column(column, justify="left" if column == "kind" else "right")
        for kind, counts in sorted(result.by_kind.items()):
            refused = sum(n for what, n in counts.items() if what.startswith("http 4"))
            figures = {**counts, "api 4xx": refused}
            table.add_row(kind, *(str(figures.get(c, 0)) for c in columns))
        out().print(table)
        for note in result.notes:
            out().print(f"  {note}", markup=False)
    raise typer.Exit(0 if result.clean else 1)
