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

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from ledger.application import Ledger
from ledger.broker import Record
from ledger.domain import Learner, learner_aggregate_id
from ledger.domain.chain import GENESIS, event_data, hash_of_event
from ledger.outbound import record_value, subject_of
from ledger.relay import EVENTS_STREAM
from ledger.settings import Services, Settings
from projections import generations
from projections.catalog import READ_MODELS
from projections.rebuild import RebuildResult, read_topic, rebuild_models, table_dump

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


def _digest(value: bytes | None) -> bytes:
    """What a record's value is compared by: 16 bytes instead of the value (a ledger's whole
    log is held while it is checked)."""
    return hashlib.blake2b(value or b"", digest_size=16).digest()


@dataclass(frozen=True)
class _Published:
    partition: int
    offset: int
    digest: bytes


class _LogReader:
    """Every record of `ledger.events` by its event id (`ce_id`), in offset order: fed the
    batches of the read models' rebuild, so the topic is read once for both checks."""

    def __init__(self, only: str | None) -> None:
        self.only = only
        self.found: dict[str, list[_Published]] = {}

    def __call__(self, records: Sequence[Record]) -> None:
        found, only = self.found, self.only
        for record in records:
            event_id = record.header("ce_id") or f"?{record.partition}/{record.offset}"
            if only is not None and not event_id.startswith(only):
                continue
            found.setdefault(event_id, []).append(
                _Published(record.partition, record.offset, _digest(record.value))
            )


@dataclass(frozen=True)
class _Stored:
    """What the log must hold for one stored event."""

    aggregate: UUID
    subject: str
    notification_id: int
    digest: bytes


class _Verifier:
    """Check 1 as the store is read (`stored`), then check 2 against the log (`match`): the
    store can be read while the log is (in another thread), since only `match` needs both."""

    def __init__(self, ledger: Ledger, settings: Settings, report: Report) -> None:
        self.ledger = ledger
        self.settings = settings
        self.report = report
        self.heads: dict[UUID, str] = {}
        self.subjects: dict[UUID, str] = {}
        #: The stored events in store order, by event id.
        self.index: dict[str, _Stored] = {}
        #: How far the store has been read (notification id).
        self.position = 0

    def miss(self, check: str, subject: str, event_id: str | None, message: str, kind: str) -> None:
        self.report.mismatches.append(Mismatch(check, subject, event_id, message, kind))

    def stored(self, event: Any, notification_id: int) -> None:
        aggregate = event.originator_id
        event_id = f"{aggregate}:{event.originator_version}"
        if aggregate not in self.subjects:
            self.subjects[aggregate] = subject_of(event)
        subject = self.subjects[aggregate]
        data = event_data(event)
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
        self.index[event_id] = _Stored(
            aggregate, subject, notification_id, _digest(record_value(data))
        )
        self.report.events += 1

    def read_store(self, progress: Progress | None) -> None:
        """Every stored event after `position`, in commit order."""
        recorder = self.ledger.ledger_recorder
        newest = recorder.max_notification_id() or 0
        while True:
            page = recorder.select_notifications(start=self.position + 1, limit=2000)
            if not page:
                break
            for notification in page:
                self.stored(self.ledger.mapper.to_domain_event(notification), notification.id)
            self.position = page[-1].id
            if progress is not None:
                progress("checking the event store", self.position, max(newest, self.position))

    def match(self, log: dict[str, list[_Published]], relayed_up_to: int) -> None:
        """Each stored event on the log once, in order per learner, with the stored content;
        then whatever the log holds that the store does not."""
        topic = self.settings.events_topic
        last_offset: dict[UUID, int] = {}
        for event_id, stored in self.index.items():
            subject = stored.subject
            copies = log.pop(event_id, [])
            if not copies:
                if stored.notification_id > relayed_up_to:
                    self.report.pending += 1
                else:
                    self.miss(
                        "log",
                        subject,
                        event_id,
                        f"event {event_id} of {subject} is not on {topic}",
                        "missing",
                    )
                continue
            first = copies[0]
            if first.digest != stored.digest:
                self.miss(
                    "log",
                    subject,
                    event_id,
                    f"event {event_id} of {subject} differs between the event store and "
                    f"{topic} (partition {first.partition}, offset {first.offset}): one of "
                    "them was altered",
                    "altered",
                )
            for copy in copies[1:]:
                if copy.digest == first.digest:
                    self.report.republished += 1
                else:
                    self.miss(
                        "log",
                        subject,
                        event_id,
                        f"event {event_id} is on {topic} twice with different content "
                        f"(offsets {first.offset} and {copy.offset})",
                        "twice",
                    )
            previous = last_offset.get(stored.aggregate)
            if previous is not None and first.offset < previous:
                self.miss(
                    "log",
                    subject,
                    event_id,
                    f"event {event_id} of {subject} is on {topic} before the event that "
                    "precedes it",
                    "order",
                )
            last_offset[stored.aggregate] = first.offset
        for event_id, copies in log.items():
            self.miss(
                "log",
                event_id.rsplit(":", 1)[0],
                event_id,
                f"{topic} holds event {event_id} (partition {copies[0].partition}, offset "
                f"{copies[0].offset}), which the event store does not",
                "extra",
            )


def verify(
    ledger: Ledger,
    settings: Settings,
    services: Services,
    learner_id: str | None = None,
    progress: Progress | None = None,
    *,
    read_models: bool = True,
    processes: int = 1,
) -> Report:
    """Run the three checks (see the module docstring); `learner_id` narrows them to one.

    The topic is read once: the read models' rebuild reads it, and the log check takes each
    batch as it passes (`_LogReader`). Meanwhile another thread reads the store and checks
    the chains (the rebuild spends much of its time waiting on Kafka and PostgreSQL); the
    store is read once more at the end for what was stored while the log was read, and only
    then are the two compared, and the rebuilt copies with the live models."""
    started = time.perf_counter()
    report = Report()
    recorder = ledger.ledger_recorder
    # Before the log is read: an event relayed later, and so perhaps not read, is pending.
    relayed_up_to = recorder.relay_position(EVENTS_STREAM)
    only = str(learner_aggregate_id(learner_id)) if learner_id else None
    reader = _LogReader(only)
    verifier = _Verifier(ledger, settings, report)
    rebuilt: list[RebuildResult] = []
    try:
        if learner_id is not None:
            aggregate = learner_aggregate_id(learner_id)
            stored = recorder.select_events_for([aggregate]).get(aggregate, [])
            # Without notification ids at hand: if the relay is behind at all, count what is
            # not on the log as pending rather than missing.
            newest = recorder.max_notification_id() or 0
            behind = newest if relayed_up_to < newest else 0
            for item in stored:
                verifier.stored(ledger.mapper.to_domain_event(item), behind)
            store_pass = None
        else:
            store_pass = threading.Thread(
                target=verifier.read_store, args=(progress,), name="audit-store", daemon=True
            )
            store_pass.start()
        try:
            if read_models:
                rebuilt = _rebuild_all(settings, services, reader, progress, processes)
            else:

                def step(done: int, total: int) -> None:
                    if progress is not None:
                        progress("reading ledger.events", done, total)

                read_topic(services.kafka_bootstrap, settings.events_topic, reader, step)
        finally:
            if store_pass is not None:
                store_pass.join()
        if store_pass is not None:
            verifier.read_store(progress)  # what was stored while the log was read
        report.records = sum(len(v) for v in reader.found.values())
        report.learners = len(verifier.heads)
        verifier.match(reader.found, relayed_up_to)
        if read_models:
            _compare_read_models(services, rebuilt, learner_id, report)
    finally:
        if rebuilt:
            with psycopg.connect(services.database_url, autocommit=True) as conn:
                for result in rebuilt:
                    generations.drop(conn, result.generation)
    report.seconds = time.perf_counter() - started
    return report


def _rebuild_all(
    settings: Settings,
    services: Services,
    reader: _LogReader,
    progress: Progress | None,
    processes: int,
) -> list[RebuildResult]:
    """Every read model rebuilt into scratch tables in one pass, the log read on the way."""

    def step(done: int, total: int) -> None:
        if progress is not None:
            progress("reading ledger.events and rebuilding the read models", done, total)

    return rebuild_models(
        services.database_url,
        services.kafka_bootstrap,
        settings.events_topic,
        READ_MODELS,
        switch=False,
        progress=step,
        on_records=reader,
        processes=processes,
    )


def _compare_read_models(
    services: Services,
    rebuilt: list[RebuildResult],
    learner_id: str | None,
    report: Report,
) -> None:
    """Check 3: each live read model against its copy rebuilt from the log, row for row."""
    for model, result in zip(READ_MODELS, rebuilt, strict=True):
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            with conn.cursor() as cur:
                live_schema = generations.live_schema(cur, model.name)
            live = table_dump(conn, live_schema, model, learner_id)
            rebuilt_rows = table_dump(conn, result.generation.schema, model, learner_id)
        for table, rows in live.items():
            only_live = sorted(set(rows) - set(rebuilt_rows[table]))
            only_rebuilt = sorted(set(rebuilt_rows[table]) - set(rows))
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
