"""The bridge worker: Open edX event bus topics in, the ledger's inbound messages out onto
`ledger.intake`, with the intake's discipline.

A batch: every record translated (or found untranslatable, with its reason); the translated
messages sent to `ledger.intake` and acknowledged by the broker; then, in one PostgreSQL
transaction, the bridge's positions on its topics and the rejections of what it could not
translate (with the original bytes and headers, as the intake keeps them). The positions in
PostgreSQL are the truth: on assignment and after any outage it seeks to them. A crash between
the send and the commit sends the batch again, under the same (source, id): the intake finds
messages it accepted already and does nothing, so every Open edX event has its effect once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError

from bridges.openedx.avro import Schemas, Untranslatable, decode
from bridges.openedx.mapping import Mapping
from bridges.openedx.translate import Translated, Translator, envelope
from ledger.application import Ledger
from ledger.broker import Consumer, OutRecord, Producer, Record
from ledger.errors import LedgerError
from ledger.heartbeats import Progress
from ledger.liveness import ConsumerWatch, Stall
from ledger.logs import get_logger
from ledger.settings import Services, Settings
from ledger.store import IntakeBookkeeping, IntakePosition, Rejection
from projections.read_models import certificates

log = get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What became of one Open edX record."""

    record: Record
    status: str  # translated | skipped | rejected
    event_type: str | None
    event_id: str | None
    sent: tuple[str, ...] = ()
    reason: str | None = None
    detail: str | None = None


def _headers(record: Record) -> dict[str, str]:
    return {k: (v or b"").decode("utf-8", errors="replace") for k, v in record.headers}


class OpenEdxBridge:
    """Consumes the Open edX topics in the `ledger-bridge-openedx` consumer group."""

    name = "bridge-openedx"
    #: After a poll that returned nothing (it waited up to 200 ms for records), look again
    #: almost at once: a longer pause only delays the next message.
    idle_wait_s = 0.01

    def __init__(
        self,
        ledger: Ledger,
        settings: Settings,
        services: Services,
        mapping: Mapping,
        schemas: Schemas,
        max_batch: int = 2000,
    ) -> None:
        self.ledger = ledger
        self.recorder = ledger.ledger_recorder
        self.settings = settings
        self.services = services
        self.topics = settings.openedx_topic_list
        self.bootstrap = settings.openedx_bootstrap or services.kafka_bootstrap
        self.max_batch = max_batch
        self.schemas = schemas
        self.translator = Translator(mapping, self._live_certificate)
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._db: psycopg.Connection[Any] | None = None
        self._needs_seek = True
        self.watch = ConsumerWatch()

    # What the ledger holds (for revocations)

    def _live_certificate(self, learner_id: str, course_id: str) -> str | None:
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(self.services.database_url, autocommit=True)
        for found in certificates.certificates_of(self._db, learner_id):
            if found.kind == "course" and found.subject == course_id and found.status == "valid":
                return found.certificate_id
        return None

    # Lifecycle

    def consumer(self) -> Consumer:
        if self._consumer is None:
            consumer = Consumer(
                self.bootstrap,
                self.settings.group_id("bridge-openedx"),
                "ledger-bridge-openedx",
                self.max_batch,
            )
            consumer.subscribe(self.topics, self._seek_to_stored, lambda _revoked: None)
            self._consumer = consumer
        return self._consumer

    def _producer_for_intake(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self.services.kafka_bootstrap, "ledger-bridge-openedx")
        return self._producer

    def _seek_to_stored(self, partitions: list[tuple[str, int]]) -> None:
        consumer = self._consumer
        if consumer is None or not partitions:
            return
        stored = {topic: self.recorder.intake_positions(topic) for topic in self.topics}
        for topic, partition in partitions:
            position = stored.get(topic, {}).get(partition)
            if position is None:
                consumer.seek_to_beginning(topic, partition)
            else:
                consumer.seek(topic, partition, position)
        log.info("bridge.positions", assigned=[f"{t}/{p}" for t, p in partitions])
        self._needs_seek = False

    def recover(self) -> None:
        self._needs_seek = True
        if self._producer is not None:  # a producer that failed may stay failed
            self._producer.close()
            self._producer = None
        self.recorder.intake_positions(self.topics[0])  # PostgreSQL answers, or an outage

    def progress(self) -> Progress:
        return Progress(self.watch.last_progress_wall, self.watch.lag, self.watch.rejoins)

    def _rejoin(self, stall: Stall) -> None:
        log.warning("worker.stalled", worker=self.name, action="rejoin", **stall.as_fields())
        self.close()
        self._needs_seek = True
        self.watch.restart()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            self._producer.close()
            self._producer = None
        if self._db is not None:
            self._db.close()
            self._db = None

    # Work

    def step(self) -> bool:
        consumer = self.consumer()
        if self._needs_seek:
            self._seek_to_stored(consumer.assignment())
        records = consumer.poll(timeout_ms=200)
        stall = self.watch.after_poll(consumer, len(records))
        if stall is not None:
            self._rejoin(stall)
            return True
        if not records:
            return False
        outcomes = self.handle_records(records)
        for outcome in outcomes:
            self._log(outcome)
        if self._needs_seek:
            return True
        ends = {(r.topic, r.partition): r.offset + 1 for r in records}
        try:
            consumer.commit(ends)
        except LedgerError as error:  # PostgreSQL holds the truth; Kafka's copy can wait
            log.warning("bridge.offset_commit_failed", error=str(error))
        return True

    def handle_records(self, records: Sequence[Record]) -> list[Outcome]:
        """Translate, send, and commit one batch (see the module docstring)."""
        outcomes = [self._translate(record) for record in records]
        translated = [
            OutRecord(self.settings.intake_topic, m.key, m.value, [])
            for outcome, messages in outcomes
            for m in messages
        ]
        if translated:
            self._producer_for_intake().send_all(translated)
        book = IntakeBookkeeping()
        ends: dict[tuple[str, int], int] = {}
        for record in records:
            ends[(record.topic, record.partition)] = record.offset + 1
        book.positions.extend(IntakePosition(t, p, o) for (t, p), o in ends.items())
        for outcome, _ in outcomes:
            if outcome.status == "rejected":
                book.rejections.append(self._rejection(outcome))
        try:
            self.ledger.session().commit(intake=book)
        except IntegrityError as error:  # another bridge moved on: re-read where to resume
            log.warning("bridge.position_conflict", error=str(error))
            self._needs_seek = True
        return [outcome for outcome, _ in outcomes]

    def _translate(self, record: Record) -> tuple[Outcome, list[Translated]]:
        headers = _headers(record)
        event_type, event_id = headers.get("ce_type"), headers.get("ce_id")
        try:
            event = envelope(headers)
            data = decode(record.value, event.event_type, self.schemas)
            messages = self.translator.translate(event, data)
        except Untranslatable as error:
            outcome = Outcome(
                record, "rejected", event_type, event_id, reason=error.reason, detail=error.message
            )
            return outcome, []
        status = "translated" if messages else "skipped"
        return Outcome(record, status, event_type, event_id, tuple(m.type for m in messages)), (
            messages
        )

    def _rejection(self, outcome: Outcome) -> Rejection:
        record = outcome.record
        source = _headers(record).get("ce_source")
        return Rejection(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=list(record.headers),
            reason=outcome.reason or "untranslatable",
            message=outcome.detail or "",
            message_source=f"urn:openedx:{source}" if source else None,
            message_id=outcome.event_id,
        )

    def _log(self, outcome: Outcome) -> None:
        r = outcome.record
        fields = {
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "event_id": outcome.event_id,
            "type": outcome.event_type,
            "outcome": outcome.status,
        }
        if outcome.status == "rejected":
            log.warning("bridge.message", reason=outcome.reason, detail=outcome.detail, **fields)
        else:
            log.info("bridge.message", sent=list(outcome.sent), **fields)
