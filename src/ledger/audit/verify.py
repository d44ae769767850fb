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

With the event store in shards (`docs/sharding.md`) every shard is read: each learner's chain
where it lives, each shard's events against the log (a catalog event is expected once, from its
specialization's home shard), and every shard's copy of the catalog against the home's (check
`catalog`: the copies must say the same, event for event).
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
from ledger.domain import Learner, Specialization, learner_aggregate_id
from ledger.domain.chain import GENESIS, event_data, hash_of_event
from ledger.outbound import record_value, subject_of
from ledger.relay import EVENTS_STREAM
from ledger.settings import Services, Settings
from ledger.sharding import Layout
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
    """Check 1 as one shard's store is read (`stored`), then check 2 against the log
    (`match`): the store can be read while the log is (in another thread), since only
    `match` needs both."""

    def __init__(
        self,
        ledger: Ledger,
        settings: Settings,
        report: Report,
        layout: Layout | None = None,
        shard: int = 0,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.report = report
        self.layout = layout or Layout(1, settings.partitions)
        self.shard = shard
        #: Catalog events this shard keeps but another publishes, by event id: the normalised
        #: data each says, for the copies' check against the home shard.
        self.copies: dict[str, tuple[str, bytes]] = {}
        #: What the relay of this shard had published when the log was about to be read.
        self.relayed_up_to = ledger.ledger_recorder.relay_position(EVENTS_STREAM)
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
        digest = _digest(record_value(data))
        if self._a_copy(event, subject):  # of the catalog; its home shard publishes it
            self.copies[event_id] = (subject, digest)
            return
        self.index[event_id] = _Stored(aggregate, subject, notification_id, digest)
        self.report.events += 1

    def _a_copy(self, event: Any, subject: str) -> bool:
        return (
            self.layout.shards > 1
            and isinstance(event, Specialization.Event)
            and self.layout.shard_of(subject) != self.shard
        )

    def read_learner(self, learner_id: str) -> None:
        """One learner's events (and nothing else) from this shard."""
        recorder = self.ledger.ledger_recorder
        aggregate = learner_aggregate_id(learner_id)
        stored = recorder.select_events_for([aggregate]).get(aggregate, [])
        # Without notification ids at hand: if the relay is behind at all, count what is
        # not on the log as pending rather than missing.
        newest = recorder.max_notification_id() or 0
        behind = newest if self.relayed_up_to < newest else 0
        for item in stored:
            self.stored(self.ledger.mapper.to_domain_event(item), behind)

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

    def match(self, log: dict[str, list[_Published]]) -> None:
        """Each stored event on the log once, in order per learner, with the stored content
        (taken out of `log`: what remains once every shard has matched is `extras`)."""
        relayed_up_to = self.relayed_up_to
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
            for copy in copies:
                if self.layout.shards > 1 and self.layout.shard(copy.partition) != self.shard:
                    self.miss(
                        "log",
                        subject,
                        event_id,
                        f"event {event_id} of {subject} is on {topic} partition "
                        f"{copy.partition} (offset {copy.offset}), which its shard "
                        f"{self.shard + 1} does not feed: another shard's relay published it",
                        "misplaced",
                    )
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

    def extras(self, log: dict[str, list[_Published]]) -> None:
        """Whatever the log holds that no shard's store does."""
        for event_id, copies in log.items():
            self.miss(
                "log",
                event_id.rsplit(":", 1)[0],
                event_id,
                f"{self.settings.events_topic} holds event {event_id} (partition "
                f"{copies[0].partition}, offset {copies[0].offset}), which the event store "
                "does not",
                "extra",
            )

    def same_catalog(self, homes: Sequence[_Verifier]) -> None:
        """This shard's copies of the catalog against each specialization's home shard."""
        for event_id, (subject, digest) in self.copies.items():
            home = homes[self.layout.shard_of(subject)]
            original = home.index.get(event_id)
            if original is None or original.digest != digest:
                what = "lacks" if original is None else "says otherwise of"
                self.miss(
                    "catalog",
                    subject,
                    event_id,
                    f"shard {self.shard + 1} keeps catalog event {event_id} of {subject}, but "
                    f"its home shard {home.shard + 1} {what} it: the shards' catalogs differ",
                    "diverged",
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
    more_shards: Sequence[Ledger] = (),
) -> Report:
    """Run the three checks (see the module docstring); `learner_id` narrows them to one.

    The topic is read once: the read models' rebuild reads it, and the log check takes each
    batch as it passes (`_LogReader`). Meanwhile another thread reads the store and checks
    the chains (the rebuild spends much of its time waiting on Kafka and PostgreSQL); the
    store is read once more at the end for what was stored while the log was read, and only
    then are the two compared, and the rebuilt copies with the live models."""
    started = time.perf_counter()
    report = Report()
    shards = [ledger, *more_shards]
    layout = Layout(len(shards), settings.partitions)
    only = str(learner_aggregate_id(learner_id)) if learner_id else None
    reader = _LogReader(only)
    # Made before the log is read: an event relayed later, and so perhaps not read, is pending.
    verifiers = [_Verifier(s, settings, report, layout, n) for n, s in enumerate(shards)]
    rebuilt: list[RebuildResult] = []
    try:
        if learner_id is not None:
            verifiers[layout.shard_of(learner_id)].read_learner(learner_id)
            store_pass = None
        else:

            def read_stores() -> None:
                for verifier in verifiers:
                    verifier.read_store(progress)

            store_pass = threading.Thread(target=read_stores, name="audit-store", daemon=True)
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
            for verifier in verifiers:
                verifier.read_store(progress)  # what was stored while the log was read
        report.records = sum(len(v) for v in reader.found.values())
        _match(verifiers, reader.found)
        if read_models:
            _compare_read_models(services, rebuilt, learner_id, report)
    finally:
        if rebuilt:
            with psycopg.connect(services.database_url, autocommit=True) as conn:
                for result in rebuilt:
                    generations.drop(conn, result.generation)
    report.seconds = time.perf_counter() - started
    return report


def _match(verifiers: Sequence[_Verifier], log: dict[str, list[_Published]]) -> None:
    """Check 2 for every shard, what no shard stored, and the shards' catalogs."""
    verifiers[0].report.learners = sum(len(v.heads) for v in verifiers)
    for verifier in verifiers:
        verifier.match(log)
    verifiers[0].extras(log)
    for verifier in verifiers:
        verifier.same_catalog(verifiers)


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
