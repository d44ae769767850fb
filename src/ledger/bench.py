"""`ledger bench intake`: the intake's throughput beside raw Kafka and raw eventsourcing.

All three are measured in the same run on the same machine, so the ratios mean something even
on a noisy two-core box: kafka-python consuming the same messages and doing nothing with them
(the ceiling Kafka sets), eventsourcing saving the same number of events in batches with no
Kafka (the ceiling the event store sets), and the real intake worker from its first consumed
record to its last commit. Each figure is the median of `--repeat` runs. The benchmark works in
a database and topics of its own, created for the run and dropped after it.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import secrets
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from kafka import KafkaConsumer
from psycopg.conninfo import make_conninfo
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from commands.cloudevents import structured
from commands.intake import IntakeWorker
from ledger import kafka_records
from ledger.bootstrap import eventsourcing_env, open_ledger, prepare_database, prepare_topics
from ledger.broker import OutRecord, Producer
from ledger.errors import LedgerError
from ledger.logs import configure_logging
from ledger.settings import Settings
from ledger.stack import services
from ledger.supervision import tune_garbage_collector
from projections.worker import ProjectionWorker

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event as EventType

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
COURSES = [f"ds-{n}" for n in range(1, 10)]


@dataclass(frozen=True)
class Figure:
    name: str
    per_second: float
    seconds: float
    count: int


def bench_messages(topic: str, messages: int, learners: int, seed: int = 1) -> list[OutRecord]:
    """A realistic mix: catalog, then per learner enrollments, payments, identity and grades."""
    rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
    run = secrets.token_hex(3)
    out: list[OutRecord] = []

    def add(event_type: str, subject: str, data: dict[str, Any], day: float) -> None:
        value = structured(
            event_type, "urn:bench", f"{run}-{len(out)}", T0 + timedelta(days=day), subject, data
        )
        out.append(OutRecord(topic, subject.encode(), value, []))

    add(
        "ledger.specialization.published.v1",
        "ds",
        {
            "specialization_id": "ds",
            "title": "Data Science",
            "partners": ["JHU"],
            "language": "en",
            "courses": COURSES,
            "capstone_course_id": "ds-capstone",
        },
        0,
    )
    per_learner = max(3, messages // learners)
    for n in range(learners):
        learner = f"bench-{run}-{n}"
        day = 1.0
        add(
            "ledger.learner.enrolled.v1",
            learner,
            {"learner_id": learner, "specialization_id": "ds", "intent": "certificate"},
            day,
        )
        add("ledger.identity.verified.v1", learner, {"learner_id": learner, "method": "id"}, day)
        for i in range(per_learner - 2):
            day += 1
            course = COURSES[i % len(COURSES)]
            kind = rng.random()
            if kind < 0.45:
                add(
                    "ledger.payment.captured.v1",
                    learner,
                    {
                        "learner_id": learner,
                        "payment_id": f"{learner}-{i}",
                        "course_id": course,
                        "amount": "49.00",
                        "currency": "USD",
                    },
                    day,
                )
            elif kind < 0.9:
                add(
                    "ledger.course.graded.v1",
                    learner,
                    {"learner_id": learner, "course_id": course, "grade": "0.8", "passed": True},
                    day,
                )
            elif kind < 0.95:
                add(
                    "ledger.payment.refund_requested.v1",
                    learner,
                    {"learner_id": learner, "payment_id": f"{learner}-{i - 1}"},
                    day,
                )
            else:
                add(
                    "ledger.learner.intent_changed.v1",
                    learner,
                    {"learner_id": learner, "specialization_id": "ds", "intent": "audit"},
                    day,
                )
            if len(out) >= messages:
                return out
    return out


class _Thing(Aggregate):
    """A minimal aggregate for the raw eventsourcing baseline (one event per save per thing)."""

    TOPIC = "bench.thing"

    class Created(Aggregate.Created):
        TOPIC = "bench.thing.created"

    class Noted(Aggregate.Event):
        TOPIC = "bench.thing.noted"
        text: str
        at: datetime

    @event(Created)
    def __init__(self) -> None:
        pass

    @event(Noted)
    def note(self, text: str, at: datetime) -> None:
        pass


class _BenchApplication(Application):  # type: ignore[type-arg]
    name = "bench"


def raw_eventsourcing(url: str, events: int, batch: int) -> Figure:
    """Save `events` events, `batch` aggregates per `save()`, as fast as eventsourcing can."""
    app = _BenchApplication(env=eventsourcing_env(url, create_table=True))
    try:
        things = [_Thing() for _ in range(batch)]
        app.save(*things)
        started = time.perf_counter()
        saved = 0
        while saved < events:
            for thing in things:
                thing.note(text="payment captured for ds-3, 49.00 USD", at=T0)
            app.save(*things)
            saved += len(things)
        elapsed = time.perf_counter() - started
    finally:
        app.close()
    return Figure("eventsourcing save, batched", saved / elapsed, elapsed, saved)


def raw_kafka(bootstrap: str, topic: str, expected: int) -> Figure:
    """kafka-python, as released, reading every message of the topic and doing nothing with
    it (without `ledger.kafka_records`' faster reader, which the workers use)."""
    with kafka_records.stock_reader():
        return _raw_kafka(bootstrap, topic, expected)


def _raw_kafka(bootstrap: str, topic: str, expected: int) -> Figure:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    count = 0
    started: float | None = None
    try:
        deadline = time.monotonic() + 300
        while count < expected and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=500)
            if batches and started is None:
                started = time.perf_counter()
            count += sum(len(b) for b in batches.values())
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        consumer.close()
    return Figure("kafka-python consume, no work", count / max(elapsed, 1e-9), elapsed, count)


def _worker_child(
    settings: Settings,
    kind: str,
    assigned: Queue[tuple[int, int]],
    go: EventType,
    started: Queue[float],
    stop: EventType,
) -> None:
    """One worker process of a benchmark (`kind` intake or projections): join the group and
    hand out nothing (reporting how many partitions it holds) until `go`; then report when it
    first handled records, and run until told to stop."""
    configure_logging(settings.log_format, "warning")
    tune_garbage_collector()  # as `ledger run` does
    bootstrap = services.kafka_bootstrap(settings)
    ledger = open_ledger(settings) if kind == "intake" else None
    worker: IntakeWorker | ProjectionWorker = (
        IntakeWorker(ledger, settings, bootstrap, settings.intake_batch)
        if ledger is not None
        else ProjectionWorker(settings, services.database_url(settings), bootstrap)
    )
    consumer = worker.consumer()
    consumer.hold()
    held = -1
    first: float | None = None
    try:
        while not go.is_set() and not stop.is_set():
            worker.step()  # joins the group; the held consumer hands out no records
            count = len(consumer.assignment())
            if count != held:
                held = count
                assigned.put((os.getpid(), count))
        consumer.release()
        while not stop.is_set():
            before = time.monotonic()
            if worker.step() and first is None:
                first = before
                started.put(first)
    finally:
        worker.close()
        if ledger is not None:
            ledger.close()


def _wait_for_group(
    assigned: Queue[tuple[int, int]], processes: int, partitions: int, timeout_s: float = 120.0
) -> None:
    """Until every process holds some partitions and together they hold them all."""
    latest: dict[int, int] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid, count = assigned.get(timeout=0.5)
        except queue.Empty:
            continue
        latest[pid] = count
        shared = len(latest) == processes and all(latest.values())
        if shared and sum(latest.values()) == partitions:
            return
    raise LedgerError(f"the benchmark's {processes} processes did not share the partitions")


#: How often a benchmark asks how far its workers are: often enough to time a run of a few
#: seconds to a percent or two, seldom enough not to take CPU from the workers it measures.
POLL_S = 0.05


def run_worker_processes(
    settings: Settings,
    kind: str,
    processes: int,
    done_so_far: Callable[[], int],
    expected: int,
    progress: Callable[[int], None],
) -> tuple[float, int]:
    """Run `processes` benchmark workers of `kind`, all in the group before any starts, until
    `done_so_far()` reaches `expected`; return the seconds from the first poll that returned
    records to then, and the count."""
    context = multiprocessing.get_context("spawn")
    assigned: Queue[tuple[int, int]] = context.Queue()
    started: Queue[float] = context.Queue()
    go = context.Event()
    stop = context.Event()
    children = [
        context.Process(
            target=_worker_child,
            args=(settings, kind, assigned, go, started, stop),
            daemon=True,
        )
        for _ in range(processes)
    ]
    done = 0
    finished: float | None = None
    try:
        for child in children:
            child.start()
        _wait_for_group(assigned, processes, settings.partitions)
        go.set()
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            done = done_so_far()
            progress(done)
            if done >= expected:
                finished = time.monotonic()
                break
            if any(c.exitcode not in (None, 0) for c in children):
                raise LedgerError(f"a {kind} process of the benchmark crashed; see its log")
            time.sleep(POLL_S)
    finally:
        stop.set()
        for child in children:
            child.join(60)
    if finished is None:
        raise LedgerError(f"the {kind} workers handled {done} of {expected} in 30 minutes")
    firsts = []
    while not started.empty():
        firsts.append(started.get())
    return finished - min(firsts), done


def ledger_intake(
    settings: Settings, processes: int, progress: Callable[[int], None], expected: int
) -> Figure:
    """The real intake worker in `processes` processes, from the first poll that returned
    records to the commit of the last one (seen in the intake positions in PostgreSQL)."""
    ledger = open_ledger(settings)
    recorder = ledger.ledger_recorder
    try:
        elapsed, done = run_worker_processes(
            settings,
            "intake",
            processes,
            lambda: sum(recorder.intake_positions(settings.intake_topic).values()),
            expected,
            progress,
        )
    finally:
        ledger.close()
    label = "process" if processes == 1 else "processes"
    return Figure(f"ledger intake, {processes} {label} (commands)", done / elapsed, elapsed, done)


def _bench_settings(base: Settings, database: str, topic_prefix: str) -> Settings:
    admin_url = services.database_url(base)
    return base.model_copy(
        update={
            "database_url": make_conninfo(admin_url, dbname=database),
            "topic_prefix": topic_prefix,
        }
    )


@contextmanager
def scratch_database(base: Settings, topic_prefix: str) -> Iterator[Settings]:
    """Settings for a database of its own, created now and dropped after use."""
    admin_url = services.database_url(base)
    database = f"ledger_bench_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        settings = _bench_settings(base, database, topic_prefix)
        prepare_database(settings)
        yield settings
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def run_intake_bench(
    base: Settings,
    messages: int,
    learners: int,
    repeat: int,
    processes: int,
    console: Console,
) -> list[Figure]:
    """Each round: publish to fresh topics, then measure Kafka, eventsourcing and the intake
    (one process, then `processes`), each intake run on a fresh database."""
    bootstrap = services.kafka_bootstrap(base)
    figures: dict[str, list[Figure]] = {}
    runs = sorted({1, processes})
    for round_number in range(1, repeat + 1):
        prefix = f"bench-{secrets.token_hex(3)}."
        with scratch_database(base, prefix) as settings:
            prepare_topics(settings)
            records = bench_messages(settings.intake_topic, messages, learners)
            console.print(
                f"round {round_number}/{repeat}: publishing {len(records)} messages "
                f"for {learners} learners to {settings.intake_topic} "
                f"({settings.partitions} partitions)"
            )
            producer = Producer(bootstrap, client_id="ledger-bench")
            try:
                producer.send_all(records[:1])
                producer.send_all(records[1:], timeout_s=300)
            finally:
                producer.close()
            figures.setdefault("kafka", []).append(
                raw_kafka(bootstrap, settings.intake_topic, len(records))
            )
            url = services.database_url(settings)
            figures.setdefault("es", []).append(raw_eventsourcing(url, len(records), 500))
        for count, figure in per_process_count(
            base,
            prefix,
            runs,
            len(records),
            "ledger intake",
            partial(ledger_intake, expected=len(records)),
            console,
        ):
            figures.setdefault(f"intake{count}", []).append(figure)
    return [_median(figures[k]) for k in ("kafka", "es", *(f"intake{n}" for n in runs))]


Measure = Callable[[Settings, int, Callable[[int], None]], Figure]


def per_process_count(
    base: Settings,
    prefix: str,
    runs: Sequence[int],
    total: int,
    label: str,
    measure: Measure,
    console: Console,
) -> Iterator[tuple[int, Figure]]:
    """`measure` once per process count in `runs`, each on a fresh database beside the topics
    named by `prefix`, with a progress bar up to `total`."""
    for count in runs:
        with (
            scratch_database(base, prefix) as settings,
            Progress(console=console, transient=True) as bar,
        ):
            task = bar.add_task(f"{label}, {count} process(es)", total=total)

            def advance(done: int, task: TaskID = task, bar: Progress = bar) -> None:
                bar.update(task, completed=done)

            yield count, measure(settings, count, advance)


def _median(runs: list[Figure]) -> Figure:
    rates = [f.per_second for f in runs]
    middle = statistics.median(rates)
    chosen = min(runs, key=lambda f: abs(f.per_second - middle))
    return Figure(chosen.name, middle, chosen.seconds, chosen.count)


def print_figures(console: Console, figures: list[Figure], title: str, baselines: int = 2) -> None:
    """The table: the first `baselines` rows are raw measures, each later row is compared
    with every one of them."""
    table = Table(title=title)
    for column in ("measure", "per second (median)", "count", "seconds"):
        table.add_column(column, justify="right")
    for base in figures[:baselines]:
        table.add_column(f"/ {base.name.split(',')[0]}", justify="right")
    for n, f in enumerate(figures):
        ratios = (
            [""] * baselines
            if n < baselines
            else [f"{f.per_second / b.per_second:.0%}" for b in figures[:baselines]]
        )
        table.add_row(f.name, f"{f.per_second:,.0f}", f"{f.count:,}", f"{f.seconds:.2f}", *ratios)
    console.print(table)
