"""`ledger bench ...`: every benchmark, each measured beside raw Kafka and raw PostgreSQL (or
plain Python) in the same run, in a database and topics of its own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.entrypoints.cli.console import command_group, err, out, quiet_settings, services

if TYPE_CHECKING:
    from ledger.settings import Settings

bench_app = command_group("Benchmarks beside raw Kafka and PostgreSQL.")

#: How many worker processes a benchmark measures beside one.
BenchProcesses = Annotated[
    int | None,
    typer.Option(min=1, max=64, help="Worker processes to measure, beside one (default: cores)."),
]


def _processes(settings: Settings, processes: int | None) -> int:
    return processes or min(os.cpu_count() or 1, settings.partitions)


@bench_app.command("intake")
def bench_intake(
    messages: Annotated[int, typer.Option(min=100, help="Messages to publish.")] = 50_000,
    learners: Annotated[int, typer.Option(min=1, help="Learners they are spread over.")] = 5_000,
    repeat: Annotated[int, typer.Option(min=1, max=9, help="Runs; figures are medians.")] = 1,
    processes: BenchProcesses = None,
    worker_logs: Annotated[
        str,
        typer.Option(
            help="The workers' log level: warning leaves out the line per message, info "
            "writes it as production does (as JSON, to /dev/null).",
        ),
    ] = "warning",
) -> None:
    """Intake commands/s beside kafka-python consuming, raw batched PostgreSQL inserts of the
    same events and eventsourcing saving, same run."""
    from ledger.entrypoints.bench.common import print_figures  # noqa: PLC0415
    from ledger.entrypoints.bench.intake import INTAKE_TARGET, run_intake_bench  # noqa: PLC0415

    settings = quiet_settings()
    count = _processes(settings, processes)
    if worker_logs not in ("warning", "info"):
        raise typer.BadParameter("warning or info", param_hint="--worker-logs")
    figures = run_intake_bench(
        settings, services(settings), messages, learners, repeat, count, out(), worker_logs
    )
    print_figures(
        out(),
        figures,
        f"ledger bench intake: {messages:,} messages, {learners:,} learners, "
        f"{settings.partitions} partitions, median of {repeat}, workers logging at {worker_logs}",
        baselines=3,
    )
    best = max(figures[3:], key=lambda f: f.per_second)
    verdict = "met" if best.per_second >= INTAKE_TARGET else "NOT met"
    out().print(
        f"intake at least {INTAKE_TARGET:,} commands/s: {verdict} ({best.per_second:,.0f}/s, "
        f"{best.name})"
    )


@bench_app.command("projections")
def bench_projections(
    events: Annotated[int, typer.Option(min=100, help="About this many events.")] = 200_000,
    learners: Annotated[int, typer.Option(min=1, help="Learners they belong to.")] = 20_000,
    repeat: Annotated[int, typer.Option(min=1, max=9, help="Runs; figures are medians.")] = 1,
    processes: BenchProcesses = None,
    interleaved: Annotated[
        bool,
        typer.Option(
            help="Publish in business-time order across learners, as months of traffic "
            "arrive, instead of each learner's events together (the default)."
        ),
    ] = False,
) -> None:
    """Projection events/s beside kafka-python consuming and a raw batched upsert, same run."""
    from ledger.entrypoints.bench.projections import (  # noqa: PLC0415
        print_projections,
        run_projections_bench,
    )

    settings = quiet_settings()
    count = _processes(settings, processes)
    result = run_projections_bench(
        settings,
        services(settings),
        events,
        learners,
        repeat,
        count,
        out(),
        interleaved=interleaved,
    )
    print_projections(out(), result, learners, repeat)


@bench_app.command("latency")
def bench_latency(
    seconds: Annotated[float, typer.Option(min=5, help="Seconds of steady load.")] = 30.0,
    rate: Annotated[
        float | None,
        typer.Option(
            min=1, help="Messages/s of the steady load (default: half the pipeline's maximum)."
        ),
    ] = None,
    burst: Annotated[
        int,
        typer.Option(min=1000, help="Messages of the full-load burst that measures the maximum."),
    ] = 20_000,
    learners: Annotated[int, typer.Option(min=10, help="Learners of the burst.")] = 4_000,
    every: Annotated[int, typer.Option(min=1, help="Sample every Nth message.")] = 10,
    repeat: Annotated[
        int, typer.Option(min=1, max=9, help="Runs, each whole; then their medians.")
    ] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="The figures as one JSON document.")
    ] = False,
) -> None:
    """Publish-to-read-model latency, hop by hop, at a steady load (half the pipeline's
    maximum, measured first), beside a raw Kafka round trip and a raw PostgreSQL commit."""
    import json  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from ledger.entrypoints.bench.latency import (  # noqa: PLC0415
        medians_of,
        print_latency,
        print_latency_runs,
        run_latency_bench,
    )

    settings = quiet_settings()
    progress = err() if as_json else out()  # stdout holds only the JSON document
    runs = []
    for n in range(repeat):
        if repeat > 1:
            progress.print(f"run {n + 1} of {repeat}")
        figures = run_latency_bench(
            settings,
            services(settings),
            seconds=seconds,
            rate=rate,
            burst=burst,
            learners=learners,
            every=every,
            console=progress,
        )
        runs.append(figures)
        if not as_json:
            print_latency(out(), figures)
    if as_json:
        document: dict[str, object] = runs[0].as_dict()
        if repeat > 1:
            document = {"runs": [r.as_dict() for r in runs], "medians": medians_of(runs)}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif repeat > 1:
        print_latency_runs(out(), runs)


@bench_app.command("queries")
def bench_queries(
    learners: Annotated[int, typer.Option(min=100, help="Learners loaded.")] = 100_000,
    samples: Annotated[int, typer.Option(min=10, help="Timed calls per query.")] = 2_000,
    explain: Annotated[
        bool, typer.Option(help="Print each query's plan (EXPLAIN ANALYZE) on that population.")
    ] = False,
) -> None:
    """p50/p99 latency of the support queries (progress, eligibility, payments, certificate,
    retention), in SQL and through the API and the console, with many learners loaded; the
    peak memory of the API and of the projection worker over that population."""
    from ledger.entrypoints.bench.queries import print_queries, run_queries_bench  # noqa: PLC0415

    settings = quiet_settings()
    result = run_queries_bench(
        settings, services(settings), learners, samples, out(), explain=explain
    )
    print_queries(out(), result)


@bench_app.command("audit")
def bench_audit(
    events: Annotated[int, typer.Option(min=10, help="Events in the learner's history.")] = 1_000,
    samples: Annotated[int, typer.Option(min=1, help="Timed calls of each query.")] = 20,
) -> None:
    """`audit history` of a long history (with and without --as-of) and `audit verify`'s rate."""
    from ledger.entrypoints.bench.audit import print_audit, run_audit_bench  # noqa: PLC0415

    settings = quiet_settings()
    print_audit(out(), run_audit_bench(settings, services(settings), events, samples, out()))


@bench_app.command("verify")
def bench_verify(
    messages: Annotated[
        int, typer.Option(min=100, help="Messages through the pipeline to fill the ledger.")
    ] = 100_000,
    learners: Annotated[int, typer.Option(min=1, help="Learners they are spread over.")] = 10_000,
    processes: BenchProcesses = None,
    repeat: Annotated[
        int, typer.Option(min=1, max=9, help="Rounds over the same ledger; figures are medians.")
    ] = 3,
) -> None:
    """`audit verify` (all three checks) and `projections rebuild` over a whole ledger, in
    events/s, beside kafka-python consuming the same records, same run."""
    from ledger.entrypoints.bench.common import print_figures  # noqa: PLC0415
    from ledger.entrypoints.bench.whole_ledger import (  # noqa: PLC0415
        REBUILD_TARGET,
        VERIFY_TARGET,
        run_verify_bench,
    )

    settings = quiet_settings()
    count = _processes(settings, processes)
    figures = run_verify_bench(
        settings, services(settings), messages, learners, count, out(), repeat
    )
    print_figures(
        out(),
        figures,
        f"ledger bench verify: {figures[0].count:,} events, {settings.partitions} partitions, "
        f"median of {repeat}",
        baselines=1,
    )
    rebuild, verified = max(figures[1:-1], key=lambda f: f.per_second), figures[-1]
    for what, figure, target in (
        ("rebuild", rebuild, REBUILD_TARGET),
        ("audit verify", verified, VERIFY_TARGET),
    ):
        verdict = "met" if figure.per_second >= target else "NOT met"
        out().print(f"{what} at least {target:,} events/s: {verdict} ({figure.per_second:,.0f}/s)")


@bench_app.command("cli")
def bench_cli(
    samples: Annotated[int, typer.Option(min=3, help="Cold starts of each command.")] = 10,
) -> None:
    """Cold starts of `ledger --help` and `ledger learner show ID --json` (on the running
    stack) beside `python -c pass`, in turn, medians."""
    from ledger.entrypoints.bench.cli_start import print_cli, run_cli_bench  # noqa: PLC0415

    settings = quiet_settings()
    timings, learner = run_cli_bench(services(settings), samples, out())
    print_cli(out(), timings, learner)


@bench_app.command("bridge")
def bench_bridge(
    learners: Annotated[
        int, typer.Option(min=10, help="Open edX learners (about ten messages each).")
    ] = 2_000,
    repeat: Annotated[int, typer.Option(min=1, max=9, help="Runs; figures are medians.")] = 1,
    processes: BenchProcesses = None,
) -> None:
    """Open edX messages/s through the bridge beside kafka-python consuming them and the
    intake handling what the bridge sent, same run (needs the [openedx] extra)."""
    from ledger.entrypoints.bench.bridge import run_bridge_bench  # noqa: PLC0415
    from ledger.entrypoints.bench.common import print_figures  # noqa: PLC0415

    settings = quiet_settings()
    count = _processes(settings, processes)
    figures = run_bridge_bench(settings, services(settings), learners, repeat, count, out())
    print_figures(
        out(),
        figures,
        f"ledger bench bridge: {figures[0].count:,} Open edX messages, {learners:,} learners, "
        f"{count} process(es), median of {repeat}",
        baselines=1,
    )
    bridge, intake = figures[1], figures[2]
    ratio = bridge.per_second / intake.per_second
    verdict = "met" if ratio >= 0.5 else "NOT met"
    out().print(
        f"bridge at least half the intake's rate: {verdict} ({bridge.per_second:,.0f} Open edX "
        f"messages/s, {ratio:.0%} of the intake's {intake.per_second:,.0f} commands/s)"
    )


@bench_app.command("shards")
def bench_shards(
    shards: Annotated[
        str, typer.Option(help="Layouts to measure, as shard counts (each divides 12).")
    ] = "1,2,4",
    messages: Annotated[int, typer.Option(min=100, help="Messages to publish.")] = 30_000,
    learners: Annotated[int, typer.Option(min=1, help="Learners they are spread over.")] = 3_000,
    processes: BenchProcesses = None,
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Where to write the figures and the capacity model's inputs "
            "(default: STATE_DIR/capacity-inputs.json, which `ledger capacity` reads).",
        ),
    ] = None,
) -> None:
    """The intake over 1, 2 and 4 shards: commands/s, the cores each part kept busy and the CPU
    per command, beside kafka-python consuming the same messages; then the capacity model's
    measured inputs (docs/capacity.md)."""
    import json  # noqa: PLC0415
    from dataclasses import asdict  # noqa: PLC0415

    from rich.table import Table  # noqa: PLC0415

    from ledger.entrypoints.bench.shards import (  # noqa: PLC0415
        PARTITIONS,
        capacity_inputs,
        run_shards_bench,
    )

    try:
        layouts = [int(n) for n in shards.split(",") if n.strip()]
    except ValueError:
        raise typer.BadParameter(
            "shard counts separated by commas", param_hint="--shards"
        ) from None
    if not layouts or any(n < 1 or PARTITIONS % n for n in layouts):
        raise typer.BadParameter(f"each must divide {PARTITIONS}", param_hint="--shards")
    settings = quiet_settings()
    count = _processes(settings, processes)
    runs, projection_rate = run_shards_bench(
        settings, services(settings), layouts, count, messages, learners, out()
    )
    table = Table(title=f"ledger bench shards: {messages:,} messages, {count} intake processes")
    for column in (
        "shards",
        "commands/s",
        "vs 1 shard",
        "raw kafka-python/s",
        "machine cores busy",
        "intake + PG CPU ms per 1,000",
        "commands/s per busy core",
        "store bytes/event",
    ):
        table.add_column(column, justify="right")
    first = runs[0].commands_per_second
    for run in runs:
        table.add_row(
            str(run.shards),
            f"{run.commands_per_second:,.0f}",
            f"{run.commands_per_second / first:.2f}",
            f"{run.raw_kafka_per_second:,.0f}",
            f"{run.machine_cores:.2f}",
            f"{run.cpu_ms_per_1000['both']:,.0f}",
            f"{run.commands_per_second / max(run.machine_cores, 0.01):,.0f}",
            f"{run.store_bytes_per_event:,.0f}",
        )
    out().print(table)
    measured = capacity_inputs(runs, projection_rate)
    path = json_path or settings.state_path / "capacity-inputs.json"
    path.write_text(
        json.dumps({"runs": [r.as_dict() for r in runs], "measured": asdict(measured)}, indent=2)
        + "\n"
    )
    out().print(f"capacity model inputs written to {path} (`ledger capacity` reads them)")


@bench_app.command("all")
def bench_all(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write every measure to this JSON file.")
    ] = None,
    learners: Annotated[
        int, typer.Option(min=100, help="Learners loaded for the support queries.")
    ] = 100_000,
    repeat: Annotated[int, typer.Option(min=1, max=9, help="Rounds of the rate benchmarks.")] = 1,
    processes: BenchProcesses = None,
) -> None:
    """Every benchmark in one run (command start, support queries, intake, projections, the
    Open edX bridge if its extra is installed, latency, verify and rebuild): one table of each
    figure beside its raw baseline from the same run, and the ratio; `--json` keeps it for
    `ledger bench compare`."""
    import importlib.util  # noqa: PLC0415
    import json  # noqa: PLC0415
    import time  # noqa: PLC0415

    from ledger.entrypoints.bench import summary  # noqa: PLC0415
    from ledger.entrypoints.bench.bridge import run_bridge_bench  # noqa: PLC0415
    from ledger.entrypoints.bench.cli_start import run_cli_bench  # noqa: PLC0415
    from ledger.entrypoints.bench.intake import run_intake_bench  # noqa: PLC0415
    from ledger.entrypoints.bench.latency import run_latency_bench  # noqa: PLC0415
    from ledger.entrypoints.bench.projections import run_projections_bench  # noqa: PLC0415
    from ledger.entrypoints.bench.queries import run_queries_bench  # noqa: PLC0415
    from ledger.entrypoints.bench.whole_ledger import run_verify_bench  # noqa: PLC0415

    settings = quiet_settings()
    found = services(settings)
    count = _processes(settings, processes)
    console = out()
    started = time.perf_counter()
    measures: list[summary.Measure] = []

    def part(name: str) -> None:
        console.rule(f"{name} ({time.perf_counter() - started:,.0f} s in)")

    part("command start")
    measures += summary.from_cli(run_cli_bench(found, 10, console)[0])
    part("support queries")
    measures += summary.from_queries(run_queries_bench(settings, found, learners, 2_000, console))
    part("intake")
    intake = run_intake_bench(settings, found, 50_000, 5_000, repeat, count, console)
    measures += summary.from_figures("intake", intake, 3)
    part("projections")
    measures += summary.from_projections(
        run_projections_bench(settings, found, 200_000, 20_000, repeat, count, console)
    )
    if importlib.util.find_spec("openedx_events") is not None:
        part("Open edX bridge")
        bridge = run_bridge_bench(settings, found, 2_000, repeat, count, console)
        measures += summary.from_figures("bridge", bridge, 1)
    else:
        console.print("the Open edX bridge is not measured: the [openedx] extra is not installed")
    part("latency")
    measures += summary.from_latency(
        run_latency_bench(
            settings,
            found,
            seconds=30.0,
            rate=None,
            burst=20_000,
            learners=4_000,
            every=10,
            console=console,
        )
    )
    part("verify and rebuild")
    whole = run_verify_bench(settings, found, 100_000, 10_000, count, console)
    measures += summary.from_figures("verify", whole, 1)
    seconds = time.perf_counter() - started
    summary.print_measures(
        console, measures, f"ledger bench all: {len(measures)} measures in {seconds / 60:.1f} min"
    )
    if json_path is not None:
        json_path.write_text(json.dumps(summary.document(measures, seconds), indent=2) + "\n")
        console.print(f"written to {json_path}")


@bench_app.command("compare")
def bench_compare(
    before: Annotated[Path, typer.Argument(help="A run written by `ledger bench all --json`.")],
    after: Annotated[Path, typer.Argument(help="A later run, to hold against it.")],
) -> None:
    """Two runs of `ledger bench all`, measure by measure: each figure in both, its change, and
    whether that is better, worse, or within the noise of a shared two-core machine."""
    from ledger.entrypoints.bench import summary  # noqa: PLC0415

    a, measures_a = summary.read_document(before)
    b, measures_b = summary.read_document(after)
    summary.print_comparison(
        out(),
        measures_a,
        measures_b,
        f"A = {before.name} ({a.get('commit')}, {a.get('finished_at')}); "
        f"B = {after.name} ({b.get('commit')}, {b.get('finished_at')})",
    )
