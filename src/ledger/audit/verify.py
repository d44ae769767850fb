"""`ledger audit verify`: the event store, `ledger.events` and the read models, checked against
each other.

1. Every learner stream's hash chain: each event must link to the hash of the one before, so a
   row altered in the store breaks the link after it (and the altered event is named).
2. Every stored event is on `ledger.events`, once, in order, with the very content the store
   holds, and nothing else is there. The relay publishes at least once, so an identical copy
   republished after a relay restart is counted, not reported; events the relay has not reached
   yet are reported as pending, not missing.
3. Each read model rebuilt from the log into a scratch schema equals the live one, row for row.

A mismatch names the learner (or table), the event and what differs; any mismatch makes the
command exit non-zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from ledger.application import Ledger
from ledger.broker import Consumer
from ledger.domain import Learner, learner_aggregate_id
from ledger.domain.chain import GENESIS, hash_of_event
from ledger.outbound import subject_of, to_record
from ledger.relay import EVENTS_STREAM
from ledger.settings import Services, Settings
from projections import generations
from projections.catalog import READ_MODELS
from projections.rebuild import rebuild, table_dump

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Mismatch:
    check: str  # chain | log | read_model
    subject: str  # learner id, or read model and table
    event_id: str | None
    message: str
    #: What is wrong, for tools that count: `altered` (a chain link or a record's content),
    #: `missing`, `twice` (with different content), `order`, `extra` (on the topic only, or a
    #: row the log does not give), `lacking` (a row the log gives).
    kind: str = ""


@dataclass
class Report:
    mismatches: list[Mismatch] = field(default_factory=list)
    events: int = 0
    learners: int = 0
    records: int = 0
    republished: int = 0
    pending: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class _Published:
    partition: int
    offset: int
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


def _read_log(
    settings: Settings, services: Services, only: str | None, progress: Progress | None
) -> dict[str, list[_Published]]:
    """Every record of `ledger.events` by its event id (`ce_id`), in offset order."""
    consumer = Consumer(services.kafka_bootstrap, None, "ledger-audit", 5000)
    found: dict[str, list[_Published]] = {}
    try:
        partitions = consumer.assign_all(settings.events_topic)
        ends = consumer.end_offsets(partitions)
        total = sum(ends.values())
        done: dict[tuple[str, int], int] = dict.fromkeys(partitions, 0)
        while any(done[p] < ends[p] for p in partitions):
            for record in consumer.poll(timeout_ms=500):
                done[(record.topic, record.partition)] = record.offset + 1
                event_id = record.header("ce_id") or f"?{record.partition}/{record.offset}"
                if only is not None and not event_id.startswith(only):
                    continue
                found.setdefault(event_id, []).append(
                    _Published(record.partition, record.offset, record.value, tuple(record.headers))
                )
            if progress is not None:
                progress("reading ledger.events", sum(done.values()), total)
    finally:
        consumer.close()
    return found


class _Verifier:
    def __init__(self, ledger: Ledger, settings: Settings, report: Report) -> None:
        self.ledger = ledger
        self.settings = settings
        self.report = report
        self.heads: dict[UUID, str] = {}
        self.subjects: dict[UUID, str] = {}
        self.last_offset: dict[UUID, int] = {}

    def miss(self, check: str, subject: str, event_id: str | None, message: str, kind: str) -> None:
        self.report.mismatches.append(Mismatch(check, subject, event_id, message, kind))

    def event(
        self, event: Any, log: dict[str, list[_Published]], relayed_up_to: int, notification_id: int
    ) -> None:
        aggregate = event.originator_id
        event_id = f"{aggregate}:{event.originator_version}"
        if aggregate not in self.subjects:
            self.subjects[aggregate] = subject_of(event)
        subject = self.subjects[aggregate]
        if isinstance(event, Learner.Event):
            expected = self.heads.get(aggregate, GENESIS)
            if event.previous_hash != expected:
                before = f"{aggregate}:{event.originator_version - 1}"
                self.miss(
                    "chain",
                    subject,
                    event_id,
                    f"learner {subject}: event {event_id} links to {event.previous_hash[:12]}…, "
                    f"but event {before} hashes to {expected[:12]}…: {before} was altered "
                    "(or removed) in the event store",
                    "altered",
                )
            self.heads[aggregate] = hash_of_event(event)
        copies = log.pop(event_id, [])
        if not copies:
            if notification_id > relayed_up_to:
                self.report.pending += 1
            else:
                self.miss(
                    "log",
                    subject,
                    event_id,
                    f"event {event_id} of {subject} is not on {self.settings.events_topic}",
                    "missing",
                )
            return
        expected_record = to_record(self.settings.events_topic, event, subject)
        first = copies[0]
        if first.value != expected_record.value:
            self.miss(
                "log",
                subject,
                event_id,
                f"event {event_id} of {subject} differs between the event store and "
                f"{self.settings.events_topic} (partition {first.partition}, offset "
                f"{first.offset}): one of them was altered",
                "altered",
            )
        for copy in copies[1:]:
            if copy.value == first.value:
                self.report.republished += 1
            else:
                self.miss(
                    "log",
                    subject,
                    event_id,
                    f"event {event_id} is on {self.settings.events_topic} twice with "
                    f"different content (offsets {first.offset} and {copy.offset})",
                    "twice",
                )
        previous = self.last_offset.get(aggregate)
        if previous is not None and first.offset < previous:
            self.miss(
                "log",
                subject,
                event_id,
                f"event {event_id} of {subject} is on {self.settings.events_topic} before "
                "the event that precedes it",
                "order",
            )
        self.last_offset[aggregate] = first.offset


def verify(
    ledger: Ledger,
    settings: Settings,
    services: Services,
    learner_id: str | None = None,
    progress: Progress | None = None,
    *,
    read_models: bool = True,
) -> Report:
    """Run the three checks (see the module docstring); `learner_id` narrows them to one."""
    started = time.perf_counter()
    report = Report()
    only = str(learner_aggregate_id(learner_id)) if learner_id else None
    log = _read_log(settings, services, only, progress)
    report.records = sum(len(v) for v in log.values())
    recorder = ledger.ledger_recorder
    relayed_up_to = recorder.relay_position(EVENTS_STREAM)
    newest = recorder.max_notification_id() or 0
    verifier = _Verifier(ledger, settings, report)
    if learner_id is not None:
        aggregate = learner_aggregate_id(learner_id)
        stored = recorder.select_events_for([aggregate]).get(aggregate, [])
        # Without notification ids at hand: if the relay is behind at all, count what is not
        # on the log as pending rather than missing.
        behind = newest if relayed_up_to < newest else 0
        for item in stored:
            verifier.event(ledger.mapper.to_domain_event(item), log, relayed_up_to, behind)
            report.events += 1
    else:
        position = 0
        while True:
            page = recorder.select_notifications(start=position + 1, limit=2000)
            if not page:
                break
            for notification in page:
                event = ledger.mapper.to_domain_event(notification)
                verifier.event(event, log, relayed_up_to, notification.id)
                report.events += 1
            position = page[-1].id
            if progress is not None:
                progress("checking the event store", position, newest)
    report.learners = len(verifier.heads)
    for event_id, copies in log.items():
        verifier.miss(
            "log",
            event_id.rsplit(":", 1)[0],
            event_id,
            f"{settings.events_topic} holds event {event_id} (partition "
            f"{copies[0].partition}, offset {copies[0].offset}), which the event "
            "store does not",
            "extra",
        )
    if read_models:
        _compare_read_models(settings, services, learner_id, report, progress)
    report.seconds = time.perf_counter() - started
    return report


def _compare_read_models(
    settings: Settings,
    services: Services,
    learner_id: str | None,
    report: Report,
    progress: Progress | None,
) -> None:
    url = services.database_url
    bootstrap = services.kafka_bootstrap
    for model in READ_MODELS:

        def step(done: int, total: int, name: str = model.name) -> None:
            if progress is not None:
                progress(f"rebuilding {name}", done, total)

        scratch = rebuild(url, bootstrap, settings.events_topic, model, switch=False, progress=step)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                with conn.cursor() as cur:
                    live_schema = generations.live_schema(cur, model.name)
                live = table_dump(conn, live_schema, model, learner_id)
                rebuilt = table_dump(conn, scratch.generation.schema, model, learner_id)
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                generations.drop(conn, scratch.generation)
        for table, rows in live.items():
            only_live = sorted(set(rows) - set(rebuilt[table]))
            only_rebuilt = sorted(set(rebuilt[table]) - set(rows))
            for row in only_live:
                report.mismatches.append(
                    Mismatch(
                        "read_model",
                        f"{model.name}.{table}",
                        None,
                        f"{model.name}.{table} has a row the log does not give: {row}",
                        "extra",
                    )
                )
            for row in only_rebuilt:
                report.mismatches.append(
                    Mismatch(
                        "read_model",
                        f"{model.name}.{table}",
                        None,
                        f"{model.name}.{table} lacks a row the log gives: {row}",
                        "lacking",
                    )
                )
