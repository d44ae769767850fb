"""The `ledger` command: one entry point for operators, support staff and the demo.

Every command reads `Settings` from the environment once, and turns a `LedgerError` into a
one-line message on stderr and exit status 1 (2 for bad input), never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.progress import TaskID
from rich.table import Table

from ledger.application import Ledger
from ledger.bootstrap import open_ledger
from ledger.broker import OutRecord, Producer
from ledger.chaos.command import chaos_app
from ledger.errors import LedgerError, NotFoundError
from ledger.logs import configure_logging
from ledger.publishing import check_lines, publish
from ledger.runner import WorkerName
from ledger.runner import run as run_workers
from ledger.settings import Settings
from ledger.stack import services
from ledger.stack.services import Service
from ledger.store import StoredRejection
from ledger.supervision import tune_garbage_collector
from ledger.views import render_certificate, render_eligibility, render_funnel, render_progress
from projections import certificates, retention
from projections.eligibility import NotEnrolledError, eligibility
from projections.learner_progress import learner_progress

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="The enrollment ledger: system of record for MOOC specializations.",
)
stack_app = typer.Typer(no_args_is_help=True, help="Start, stop and inspect PostgreSQL and Kafka.")
learner_app = typer.Typer(no_args_is_help=True, help="Questions support staff ask about learners.")
app.add_typer(stack_app, name="stack")
rejections_app = typer.Typer(
    no_args_is_help=True, help="Messages the intake could not accept, kept with the reason."
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks beside raw Kafka and PostgreSQL.")
app.add_typer(learner_app, name="learner")
app.add_typer(bench_app, name="bench")
app.add_typer(rejections_app, name="rejections")
certificate_app = typer.Typer(no_args_is_help=True, help="Certificates by verification code.")
app.add_typer(certificate_app, name="certificate")
stats_app = typer.Typer(no_args_is_help=True, help="Figures across learners.")
app.add_typer(stats_app, name="stats")
projections_app = typer.Typer(no_args_is_help=True, help="The read models: lag and rebuilds.")
app.add_typer(projections_app, name="projections")
audit_app = typer.Typer(
    no_args_is_help=True, help="Histories as the ledger knew them, and proof nothing was altered."
)
app.add_typer(audit_app, name="audit")
app.add_typer(chaos_app, name="chaos")

# Off a terminal rich assumes 80 columns and squeezes tables; logs and CI output are wider.
out = Console() if sys.stdout.isatty() else Console(width=140)
err = Console(stderr=True)


def _checked_id(value: str) -> str:
    """An id as the read models can look it up, or a clear error (no NUL, valid UTF-8: a shell
    can pass bytes that are not, which Python keeps as surrogates PostgreSQL cannot take)."""
    from commands.limits import storable  # noqa: PLC0415 - pydantic only when asked

    try:
        return storable(value)
    except ValueError as error:
        raise typer.BadParameter(f"{value!r} {error}") from None


LearnerArg = Annotated[str, typer.Argument(help="The learner's id.", callback=_checked_id)]
SpecializationArg = Annotated[
    str, typer.Argument(help="The specialization's id.", callback=_checked_id)
]
CodeArg = Annotated[str, typer.Argument(help="A verification code.", callback=_checked_id)]


def _settings() -> Settings:
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level, settings.kafka_log)
    return settings


def _print_status(statuses: list[services.ServiceStatus]) -> None:
    table = Table(show_header=True)
    for column in ("service", "state", "where", "detail"):
        table.add_column(column)
    for s in statuses:
        state = "[green]running[/green]" if s.running else "[red]stopped[/red]"
        table.add_row(str(s.service), state, s.where, s.detail)
    out.print(table)


@stack_app.command("up")
def stack_up(
    service: Annotated[
        Service | None, typer.Argument(help="Only this service (default: both).")
    ] = None,
) -> None:
    """Start PostgreSQL and Kafka (unless given by the environment) and create the topics."""
    settings = _settings()
    statuses = services.up(settings, service, waiting=err.print)
    if service in (None, Service.POSTGRES):
        from ledger.bootstrap import prepare_database  # noqa: PLC0415 - only needed here

        prepare_database(settings)
    if service in (None, Service.KAFKA):
        from ledger.bootstrap import prepare_topics  # noqa: PLC0415 - only needed here

        created = prepare_topics(settings)
        if created:
            out.print(f"created topics: {', '.join(created)}")
    _print_status(statuses)


@stack_app.command("down")
def stack_down(
    service: Annotated[
        Service | None, typer.Argument(help="Only this service (default: both).")
    ] = None,
) -> None:
    """Stop what `ledger stack up` started; data stays in the state directory."""
    _print_status(services.down(_settings(), service))


@stack_app.command("status")
def stack_status() -> None:
    """Show what runs where."""
    statuses = services.status(_settings())
    _print_status(statuses)
    if not all(s.running for s in statuses):
        raise typer.Exit(3)


@app.command("run")
def run(
    worker: Annotated[
        WorkerName, typer.Argument(help="Which worker (default: the three workers; api: HTTP).")
    ] = WorkerName.ALL,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Processes for the intake and the projections (default: "
            "LEDGER_INTAKE_PROCESSES, LEDGER_PROJECTION_PROCESSES, 1 each).",
        ),
    ] = None,
) -> None:
    """Run the intake, relay and projection workers (or the HTTP API) until SIGINT/SIGTERM."""
    raise typer.Exit(run_workers(_settings(), worker, processes))


@app.command("publish")
def publish_command(
    source: Annotated[str, typer.Argument(help="A file of JSON lines, or - for stdin.")] = "-",
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Publish the valid lines even if some are bad.")
    ] = False,
) -> None:
    """Publish structured-mode CloudEvents (one per line) onto ledger.intake, checked first."""
    settings = _settings()
    if source == "-":
        lines = sys.stdin.buffer.read().splitlines()
    else:
        path = Path(source)
        if not path.is_file():
            raise LedgerError(f"{source}: no such file")
        lines = path.read_bytes().splitlines()
    checked = check_lines(lines, settings.intake_topic)
    for bad in checked.bad:
        err.print(f"line {bad.number}: {bad.reason}: {bad.message}", markup=False)
    if checked.bad and not skip_bad:
        err.print(
            f"{len(checked.bad)} bad line(s); nothing published (fix them, or pass --skip-bad)"
        )
        raise typer.Exit(2)
    producer = Producer(services.kafka_bootstrap(settings), client_id="ledger-publish")
    try:
        sent = publish(producer, checked.records)
    finally:
        producer.close()
    out.print(
        f"published {sent} message(s) to {settings.intake_topic}"
        + (f"; skipped {len(checked.bad)} bad line(s)" if checked.bad else "")
    )
    if checked.bad:
        raise typer.Exit(2)


@learner_app.command("show")
def learner_show(
    learner_id: LearnerArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Where a learner is in each specialization they enrolled in."""
    settings = _settings()
    with psycopg.connect(services.database_url(settings), autocommit=True) as conn:
        progress = learner_progress(conn, learner_id)
    if progress is None:
        err.print(f"learner {learner_id!r} is not known to the ledger (or not projected yet)")
        raise typer.Exit(4)
    if as_json:
        print(progress.model_dump_json(indent=2))
    else:
        render_progress(out, progress)


@learner_app.command("why")
def learner_why(
    learner_id: LearnerArg,
    specialization_id: SpecializationArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Is the learner eligible for the specialization certificate, and if not, what is missing."""
    settings = _settings()
    with psycopg.connect(services.database_url(settings), autocommit=True) as conn:
        try:
            answer = eligibility(conn, learner_id, specialization_id)
        except NotEnrolledError as error:
            err.print(str(error), markup=False)
            raise typer.Exit(4) from None
    if answer is None:
        err.print(f"learner {learner_id!r} is not known to the ledger (or not projected yet)")
        raise typer.Exit(4)
    if as_json:
        print(answer.model_dump_json(indent=2))
    else:
        render_eligibility(out, answer)


@certificate_app.command("verify")
def certificate_verify(
    code: CodeArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Whose certificate a verification code is, for what, and whether it is still valid."""
    settings = _settings()
    with psycopg.connect(services.database_url(settings), autocommit=True) as conn:
        found = certificates.verify(conn, code)
    if found is None:
        err.print(f"no certificate has the verification code {code!r}", markup=False)
        raise typer.Exit(4)
    if as_json:
        print(found.model_dump_json(indent=2))
    else:
        render_certificate(out, found)


@stats_app.command("retention")
def stats_retention(
    specialization: Annotated[str | None, typer.Option(help="Only this specialization.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Completion per specialization and enrollment month: of all, of intent, of payers."""
    settings = _settings()
    with psycopg.connect(services.database_url(settings), autocommit=True) as conn:
        rows = retention.funnel(conn, specialization)
    if as_json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        render_funnel(out, rows)


@projections_app.command("status")
def projections_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Lag of each read model, per partition of ledger.events."""
    from projections.status import projection_lag  # noqa: PLC0415 - needs Kafka; only here

    settings = _settings()
    with psycopg.connect(services.database_url(settings), autocommit=True) as conn:
        lags = projection_lag(conn, services.kafka_bootstrap(settings), settings.events_topic)
    if as_json:
        print(json.dumps([{**vars(lag), "behind": lag.behind} for lag in lags], indent=2))
        return
    table = Table(title=f"Read models on {settings.events_topic}")
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
    out.print(table)


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[
        str | None, typer.Argument(help="One read model (default: all of them).")
    ] = None,
) -> None:
    """Rebuild read models from the start of ledger.events into fresh tables; switch over only
    once caught up, so queries never see a half-built model."""
    from rich.progress import Progress  # noqa: PLC0415 - only this command draws bars

    from projections.catalog import READ_MODELS, by_name  # noqa: PLC0415
    from projections.rebuild import rebuild  # noqa: PLC0415

    settings = _settings()
    try:
        models = [by_name(name)] if name else list(READ_MODELS)
    except KeyError as error:
        err.print(str(error.args[0]), markup=False)
        raise typer.Exit(2) from None
    for model in models:
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task(f"rebuilding {model.name}", total=None)

            def advance(done: int, total: int, task: TaskID = task, bar: Progress = bar) -> None:
                bar.update(task, completed=done, total=total)

            result = rebuild(
                services.database_url(settings),
                services.kafka_bootstrap(settings),
                settings.events_topic,
                model,
                switch=True,
                progress=advance,
            )
        rate = result.records / result.seconds if result.seconds else 0.0
        replaced = f", replacing {result.replaced.schema}" if result.replaced else ""
        out.print(
            f"{model.name}: {result.events:,} events applied from {result.records:,} records"
            f" in {result.seconds:.1f} s ({rate:,.0f}/s); live in {result.generation.schema}"
            f"{replaced}"
        )


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise LedgerError(
            f"--as-of {text!r} is not an ISO 8601 time (e.g. 2026-03-01T12:00:00+00:00)"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    from ledger.domain.timeline import EARLIEST, LATEST, within  # noqa: PLC0415

    if not within(moment):
        raise LedgerError(
            f"--as-of {text!r} is outside the times the ledger records "
            f"({EARLIEST.isoformat()} to {LATEST.isoformat()})"
        )
    return moment


@audit_app.command("history")
def audit_history(
    learner_id: LearnerArg,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Only what was recorded by then (ISO 8601; UTC if no zone)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A learner's whole history, oldest first; with --as-of, as the ledger knew it then."""
    from ledger.audit.history import UnknownLearnerError, learner_history  # noqa: PLC0415
    from ledger.views import render_history  # noqa: PLC0415

    settings = _settings()
    moment = _parse_time(as_of) if as_of else None
    ledger = open_ledger(settings)
    try:
        history = learner_history(ledger, learner_id, moment)
    except UnknownLearnerError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(4) from None
    finally:
        ledger.close()
    if as_json:
        print(history.model_dump_json(indent=2))
    else:
        render_history(out, history)


@audit_app.command("export")
def audit_export(
    learner_id: LearnerArg,
    to: Annotated[
        Path | None, typer.Option("--to", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """A learner's history as JSON lines of CloudEvents with the hash chain, for `audit check`."""
    from ledger.audit.export import NothingToExportError, export_lines  # noqa: PLC0415

    settings = _settings()
    ledger = open_ledger(settings)
    try:
        lines = list(export_lines(ledger, learner_id))
    except NothingToExportError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(4) from None
    finally:
        ledger.close()
    text = "\n".join(lines) + "\n"
    if to is None:
        sys.stdout.write(text)
    else:
        to.write_text(text, encoding="utf-8")
        err.print(f"wrote {len(lines) - 1} events of {learner_id} to {to}", markup=False)


@audit_app.command("check")
def audit_check(
    file: Annotated[Path, typer.Argument(help="An export written by `ledger audit export`.")],
) -> None:
    """Check an export on its own (no database, no broker): every hash, link and line."""
    from ledger.audit.export import check_export  # noqa: PLC0415

    if not file.is_file():
        raise LedgerError(f"{file}: no such file")
    lines = file.read_text(encoding="utf-8").splitlines()
    problems = check_export(lines)
    if not problems:
        out.print(f"{file}: intact ({sum(1 for x in lines if x.strip()) - 1} events, chain holds)")
        return
    for problem in problems:
        out.print(f"{problem.kind}: {problem.message}", markup=False)
    err.print(f"{file}: {len(problems)} problem(s)")
    raise typer.Exit(1)


@audit_app.command("verify")
def audit_verify(
    learner: Annotated[str | None, typer.Option("--learner", help="Only this learner.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check every hash chain, the event log against the store, and the read models against a
    rebuild from the log; name every mismatch; exit 1 on any."""
    from rich.progress import Progress  # noqa: PLC0415 - only this command draws bars

    from ledger.audit.verify import verify  # noqa: PLC0415

    settings = _settings()
    ledger = open_ledger(settings)
    try:
        with Progress(console=err, transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def advance(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(what, total=total or None)
                bar.update(tasks[what], completed=done, total=total or None)

            report = verify(ledger, settings, learner, advance)
    finally:
        ledger.close()
    if as_json:
        print(
            json.dumps(
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
                },
                indent=2,
            )
        )
    else:
        for m in report.mismatches:
            out.print(f"[red]{m.check}[/red] {m.message}", highlight=False)
        out.print(
            f"{'OK' if report.ok else 'MISMATCHES: ' + str(len(report.mismatches))}: "
            f"{report.events:,} events of {report.learners:,} learner streams, "
            f"{report.records:,} records on {settings.events_topic} "
            f"({report.republished:,} identical republished copies, {report.pending:,} not "
            f"relayed yet), read models rebuilt and compared; "
            f"{report.seconds:.1f} s, {report.events_per_second:,.0f} events/s"
        )
    if not report.ok:
        raise typer.Exit(1)


def _rejection_json(r: StoredRejection) -> dict[str, object]:
    def text(raw: bytes | None) -> str | None:
        return None if raw is None else raw.decode("utf-8", errors="backslashreplace")

    return {
        "rejection_id": r.rejection_id,
        "rejected_at": r.rejected_at.isoformat(),
        "reason": r.reason,
        "message": r.message,
        "source": r.message_source,
        "id": r.message_id,
        "origin": f"{r.topic}/{r.partition}/{r.offset}",
        "key": text(r.key),
        "value": text(r.value),
        "headers": [[k, text(v)] for k, v in r.headers],
        "retried_at": r.retried_at.isoformat() if r.retried_at else None,
        "retries": r.retries,
    }


@rejections_app.command("list")
def rejections_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason code.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """The newest rejected messages, with their reason."""
    settings = _settings()
    ledger = open_ledger(settings)
    try:
        rows = ledger.ledger_recorder.select_rejections(0, limit, reason, newest_first=True)
    finally:
        ledger.close()
    if as_json:
        for r in rows:
            print(json.dumps(_rejection_json(r)))
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
    out.print(table)


def _one_rejection(ledger: Ledger, rejection_id: int) -> StoredRejection:
    found = ledger.ledger_recorder.get_rejection(rejection_id)
    if found is None:
        raise NotFoundError(f"no rejection {rejection_id}: see `ledger rejections list`")
    return found


@rejections_app.command("show")
def rejections_show(
    rejection_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One rejected message: the reason, and the original bytes and headers."""
    ledger = open_ledger(_settings())
    try:
        rejection = _rejection_json(_one_rejection(ledger, rejection_id))
    finally:
        ledger.close()
    if as_json:
        print(json.dumps(rejection, indent=2))
        return
    for key, value in rejection.items():
        out.print(f"[bold]{key}[/bold]: {value}", highlight=False)


@rejections_app.command("retry")
def rejections_retry(rejection_id: int) -> None:
    """Re-submit a rejected message, unchanged, onto ledger.intake (once its cause is fixed)."""
    settings = _settings()
    ledger = open_ledger(settings)
    try:
        rejection = _one_rejection(ledger, rejection_id)
        producer = Producer(services.kafka_bootstrap(settings), client_id="ledger-retry")
        try:
            headers = [*rejection.headers, ("ledger_retry_of", str(rejection_id).encode())]
            producer.send_all(
                [OutRecord(settings.intake_topic, rejection.key, rejection.value, headers)]
            )
        finally:
            producer.close()
        ledger.ledger_recorder.mark_retried(rejection_id)
    finally:
        ledger.close()
    out.print(f"re-submitted rejection {rejection_id} to {settings.intake_topic}")


#: How many worker processes a benchmark measures beside one.
BenchProcesses = Annotated[
    int | None,
    typer.Option(min=1, max=64, help="Worker processes to measure, beside one (default: cores)."),
]


def _bench_settings() -> Settings:
    """Settings for a benchmark: worker logs at warning, or they would be what is measured."""
    settings = Settings.from_env()
    configure_logging(settings.log_format, "warning")
    return settings


def _bench_processes(settings: Settings, processes: int | None) -> int:
    return processes or min(os.cpu_count() or 1, settings.partitions)


@bench_app.command("intake")
def bench_intake(
    messages: Annotated[int, typer.Option(min=100, help="Messages to publish.")] = 50_000,
    learners: Annotated[int, typer.Option(min=1, help="Learners they are spread over.")] = 5_000,
    repeat: Annotated[int, typer.Option(min=1, max=9, help="Runs; figures are medians.")] = 1,
    processes: BenchProcesses = None,
) -> None:
    """Intake commands/s beside kafka-python consuming and eventsourcing saving, same run."""
    from ledger.bench import print_figures, run_intake_bench  # noqa: PLC0415 - only needed here

    settings = _bench_settings()
    count = _bench_processes(settings, processes)
    figures = run_intake_bench(settings, messages, learners, repeat, count, out)
    print_figures(
        out,
        figures,
        f"ledger bench intake: {messages:,} messages, {learners:,} learners, "
        f"{settings.partitions} partitions, median of {repeat}",
    )


@app.command("schemas")
def schemas_command(
    root: Annotated[Path, typer.Option(help="Where the schemas live.")] = Path("schemas"),
    check: Annotated[bool, typer.Option("--check", help="Only report drift.")] = False,
) -> None:
    """Write (or --check) the JSON Schemas and examples of every message type."""
    from ledger import schemas  # noqa: PLC0415 - only needed here

    if check:
        problems = schemas.drift(root)
        for problem in problems:
            err.print(problem)
        if problems:
            err.print("run `ledger schemas` to regenerate")
            raise typer.Exit(1)
        out.print(f"{root}: in step with the code")
        return
    written = schemas.write(root)
    out.print(f"wrote {len(written)} files under {root}")


@bench_app.command("projections")
def bench_projections(
    events: Annotated[int, typer.Option(min=100, help="About this many events.")] = 50_000,
    learners: Annotated[int, typer.Option(min=1, help="Learners they belong to.")] = 5_000,
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
    from ledger.bench_read import print_projections, run_projections_bench  # noqa: PLC0415

    settings = _bench_settings()
    count = _bench_processes(settings, processes)
    figures = run_projections_bench(
        settings, events, learners, repeat, count, out, interleaved=interleaved
    )
    print_projections(out, figures, learners, repeat)


@bench_app.command("queries")
def bench_queries(
    learners: Annotated[int, typer.Option(min=100, help="Learners loaded.")] = 100_000,
    samples: Annotated[int, typer.Option(min=10, help="Timed calls per query.")] = 2_000,
) -> None:
    """p50/p99 latency of the four support queries with many learners loaded."""
    from ledger.bench_read import print_queries, run_queries_bench  # noqa: PLC0415

    settings = _bench_settings()
    print_queries(out, run_queries_bench(settings, learners, samples, out))


@bench_app.command("audit")
def bench_audit(
    events: Annotated[int, typer.Option(min=10, help="Events in the learner's history.")] = 1_000,
    samples: Annotated[int, typer.Option(min=1, help="Timed calls of each query.")] = 20,
) -> None:
    """`audit history` of a long history (with and without --as-of) and `audit verify`'s rate."""
    from ledger.bench_audit import print_audit, run_audit_bench  # noqa: PLC0415

    settings = _bench_settings()
    print_audit(out, run_audit_bench(settings, events, samples, out))


@app.command("demo")
def demo(
    learners: Annotated[
        int, typer.Option(min=1, max=100_000, help="Learners in the cohort.")
    ] = 2_000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated cohort.")] = 2014,
) -> None:
    """Run the launch catalog and a simulated cohort through the real pipeline."""
    from ledger.demo import run_demo  # noqa: PLC0415 - rich progress UI only needed here

    settings = Settings.from_env()
    # The demo talks to a person: worker logs would bury its progress bars, so only problems
    # are logged unless LEDGER_LOG_LEVEL asks for more.
    level = settings.log_level if "LEDGER_LOG_LEVEL" in os.environ else "warning"
    configure_logging(settings.log_format, level)
    run_demo(settings, learners, seed, out)


def main() -> None:
    """Console-script entry point: map `LedgerError` to a clear message and exit status."""
    # Every command reads or writes thousands of short-lived objects; with Python's default
    # thresholds the collector's full passes made `audit history` of 1,000 events swing from
    # 67 ms to 180 ms (`ledger bench audit`).
    tune_garbage_collector()
    try:
        app()
    except LedgerError as error:
        err.print(f"ledger: {error}", markup=False)
        sys.exit(1)


if __name__ == "__main__":  # `python -m ledger.cli`: how `ledger chaos` runs itself again
    main()
