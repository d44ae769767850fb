"""`ledger bench intake`: the intake's throughput beside raw Kafka and raw PostgreSQL.

All are measured in the same run on the same machine, so the ratios mean something even on a
noisy two-core box: kafka-python consuming the same messages and doing nothing with them (the
ceiling Kafka sets); the events the intake makes of them (decided in memory beforehand) inserted
in batches into a plain table shaped like the event store's (the ceiling PostgreSQL sets);
eventsourcing saving as many events in batches, with no Kafka (what the library costs on top);
and the real intake worker from its first consumed record to its last commit. Each figure is
the median of `--repeat` runs. The benchmark works in a database and topics of its own, created
for the run and dropped after it.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from rich.console import Console

from commands.cloudevents import structured
from ledger.broker import OutRecord, Producer
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import (
    COURSES,
    T0,
    Figure,
    Scratch,
    deleting_topics,
    intake_rate,
    median,
    per_process_count,
    processes_label,
    raw_kafka,
    scratch,
    time_batches,
)
from ledger.entrypoints.bench.ledger_events import decided_events
from ledger.entrypoints.bootstrap import eventsourcing_env
from ledger.settings import Services, Settings


def bench_messages(topic: str, messages: int, learners: int, seed: int = 1) -> list[OutRecord]:
    """A realistic mix: catalog, then per learner an enrollment, identity, and courses paid for
    then graded (most passed, so certified), with refunds asked and intents changed."""
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
            # Courses two messages each: paid for, then graded, as a learner on the
            # certificate track takes them; so most courses end in a certificate (course
            # certificates, and the credentials issued for them, are part of the load).
            day += 1
            course = COURSES[(i // 2) % len(COURSES)]
            kind = rng.random()
            if i % 2 == 0 and kind < 0.9:
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
            elif i % 2 == 0:
                add(
                    "ledger.learner.intent_changed.v1",
                    learner,
                    {"learner_id": learner, "specialization_id": "ds", "intent": "audit"},
                    day,
                )
            elif kind < 0.9:
                passed = kind < 0.8
                add(
                    "ledger.course.graded.v1",
                    learner,
                    {
                        "learner_id": learner,
                        "course_id": course,
                        "grade": "0.8" if passed else "0.4",
                        "passed": passed,
                    },
                    day,
                )
            else:
                add(
                    "ledger.payment.refund_requested.v1",
                    learner,
                    {"learner_id": learner, "payment_id": f"{learner}-{i - 1}"},
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


def raw_insert(url: str, events: Sequence[Any], batch: int) -> Figure:
    """Insert the stored form of `events` (originator, version, topic, state bytes) into a
    plain table shaped like the event store's, `batch` rows per transaction, one
    `INSERT ... SELECT FROM unnest(...)` each: what PostgreSQL allows for writing exactly what
    the intake writes, without deciding, deduping, locking or bookkeeping. The parameters are
    built before the clock starts."""
    rows = [(e.originator_id, e.originator_version, e.topic, bytes(e.state)) for e in events]
    batches = [
        [list(column) for column in zip(*rows[start : start + batch], strict=True)]
        for start in range(0, len(rows), batch)
    ]
    elapsed = time_batches(
        url,
        "raw_insert_events",
        (
            "CREATE TABLE raw_insert_events (notification_id bigserial,"
            " originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
            " topic text NOT NULL, state bytea NOT NULL,"
            " PRIMARY KEY (originator_id, originator_version))",
            "CREATE UNIQUE INDEX ON raw_insert_events (notification_id)",
        ),
        "INSERT INTO raw_insert_events (originator_id, originator_version, topic, state)"
        " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])",
        batches,
    )
    return Figure(
        "postgres unnest insert of the events, batched", len(rows) / elapsed, elapsed, len(rows)
    )


def ledger_intake(
    scratch: Scratch, processes: int, progress: Callable[[int], None], expected: int
) -> Figure:
    """The real intake worker in `processes` processes, from the first poll that returned
    records to the commit of the last one (seen in the intake positions in PostgreSQL)."""
    elapsed, done = intake_rate(
        scratch, "intake", processes, scratch.settings.intake_topic, expected, progress
    )
    name = f"ledger intake, {processes_label(processes)} (commands)"
    return Figure(name, done / elapsed, elapsed, done)


#: The commands/s the intake is asked to reach on the two-core reference machine.
INTAKE_TARGET = 10_000


def run_intake_bench(
    base: Settings,
    services: Services,
    messages: int,
    learners: int,
    repeat: int,
    processes: int,
    console: Console,
    worker_log_level: str = "warning",
) -> list[Figure]:
    """Each round: publish to fresh topics, then measure Kafka, PostgreSQL, eventsourcing and
    the intake (one process, then `processes`), each intake run on a fresh database; the
    workers log at `worker_log_level` (`Scratch.worker_log_level`)."""
    kafka = services.kafka_bootstrap
    figures: dict[str, list[Figure]] = {}
    runs = sorted({1, processes})
    stored: list[Any] | None = None
    for round_number in range(1, repeat + 1):
        prefix = f"bench-{secrets.token_hex(3)}."
        with deleting_topics(services, prefix):
            with scratch(base, services, prefix) as own:
                settings = own.settings
                bootstrap.prepare_topics(settings, own.services)
                records = bench_messages(settings.intake_topic, messages, learners)
                console.print(
                    f"round {round_number}/{repeat}: publishing {len(records)} messages "
                    f"for {learners} learners to {settings.intake_topic} "
                    f"({settings.partitions} partitions)"
                )
                producer = Producer(kafka, client_id="ledger-bench")
                try:
                    producer.send_all(records[:1])
                    producer.send_all(records[1:], timeout_s=300)
                finally:
                    producer.close()
                figures.setdefault("kafka", []).append(
                    raw_kafka(kafka, settings.intake_topic, len(records))
                )
                figures.setdefault("es", []).append(
                    raw_eventsourcing(own.services.database_url, len(records), 500)
                )
                if stored is None:
                    with console.status("deciding the messages in memory, for the raw inserts"):
                        stored = decided_events(records, lambda n: None, stored=True)
                figures.setdefault("pg", []).append(
                    raw_insert(own.services.database_url, stored, settings.intake_batch)
                )
            for count, figure in per_process_count(
                base,
                services,
                prefix,
                runs,
                len(records),
                "ledger intake",
                partial(ledger_intake, expected=len(records)),
                console,
                worker_log_level,
            ):
                figures.setdefault(f"intake{count}", []).append(figure)
    baselines = ("kafka", "pg", "es")
    return [median(figures[k]) for k in (*baselines, *(f"intake{n}" for n in runs))]
