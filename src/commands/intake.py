"""The intake worker: `ledger.intake` in, events and bookkeeping out, exactly once.

It polls a batch, decides every message of it in one `LedgerSession` (each learner loaded once),
and commits the new events together with the intake positions, the accepted (source, id) pairs
and the rejections in one PostgreSQL transaction. The positions in PostgreSQL are the truth: on
every partition assignment, and after any outage, the consumer seeks to them, so a message is
applied once however often Kafka redelivers it. If a batch cannot be committed as a whole, it is
replayed one message at a time, so one bad message never holds up the others; a message whose
own outcome cannot be stored either is kept as a rejection (`unstorable`, with the error), so
even a fault nobody foresaw costs that one message, never its partition. A consumer that stops
receiving while records wait is replaced by a fresh one (`ledger.liveness`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands.cloudevents import InboundMessage, RejectionError, parse
from commands.handlers import handle
from ledger.application import LearnerCache, Ledger, LedgerSession
from ledger.broker import Consumer, Record
from ledger.domain import learner_aggregate_id, specialization_aggregate_id
from ledger.errors import LedgerError
from ledger.heartbeats import Progress
from ledger.liveness import ConsumerWatch, Stall
from ledger.logs import get_logger
from ledger.settings import Settings
from ledger.store import AcceptedMessage, IntakeBookkeeping, IntakePosition, Rejection
from ledger.supervision import OUTAGES

log = get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What became of one record: for the log line and for tests."""

    record: Record
    status: str  # accepted | duplicate | rejected
    message_id: str | None
    message_type: str | None
    reason: str | None = None
    detail: str | None = None


def aggregate_ids(messages: Sequence[InboundMessage]) -> list[UUID]:
    """The aggregates a batch of messages will need, to load them in one go."""
    ids: list[UUID] = []
    for message in messages:
        data = message.data
        learner_id = getattr(data, "learner_id", None)
        if isinstance(learner_id, str):
            ids.append(learner_aggregate_id(learner_id))
        specialization_id = getattr(data, "specialization_id", None)
        if isinstance(specialization_id, str):
            ids.append(specialization_aggregate_id(specialization_id))
    return ids


class BatchAborted(Exception):  # noqa: N818 - control flow, never leaves this module
    """Raised when a handler fails unexpectedly: the batch is replayed message by message."""


def _rejection(record: Record, error: RejectionError) -> Rejection:
    return Rejection(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=list(record.headers),
        reason=error.reason,
        message=error.message,
        message_source=error.source,
        message_id=error.message_id,
    )


class IntakeWorker:
    """Consumes `ledger.intake` in the `ledger-intake` consumer group."""

    name = "intake"
    #: After a poll that returned nothing (it waited up to 200 ms for records), look again
    #: almost at once: a longer pause only delays the next message.
    idle_wait_s = 0.01

    def __init__(
        self, ledger: Ledger, settings: Settings, bootstrap: str, max_batch: int = 2000
    ) -> None:
        self.ledger = ledger
        self.recorder = ledger.ledger_recorder
        self.settings = settings
        self.bootstrap = bootstrap
        self.max_batch = max_batch
        self.topic = settings.intake_topic
        self._consumer: Consumer | None = None
        self._needs_seek = True
        self.cache = LearnerCache()
        self.watch = ConsumerWatch()

    # Consumer lifecycle

    def consumer(self) -> Consumer:
        """The group member, connected and subscribed on first use."""
        return self._connect()

    def _connect(self) -> Consumer:
        if self._consumer is None:
            consumer = Consumer(
                self.bootstrap, self.settings.group_id("intake"), "ledger-intake", self.max_batch
            )
            consumer.subscribe([self.topic], self._on_assigned, lambda _revoked: None)
            self._consumer = consumer
        return self._consumer

    def _on_assigned(self, partitions: list[tuple[str, int]]) -> None:
        self.cache.clear()  # learners of partitions another worker had may have moved on
        self._seek_to_stored(partitions)

    def _seek_to_stored(self, partitions: Sequence[tuple[str, int]]) -> None:
        consumer = self._consumer
        if consumer is None or not partitions:
            return
        stored = self.recorder.intake_positions(self.topic)
        for topic, partition in partitions:
            if partition in stored:
                consumer.seek(topic, partition, stored[partition])
            else:
                consumer.seek_to_beginning(topic, partition)
        log.info(
            "intake.positions",
            assigned=[p for _, p in partitions],
            positions={p: stored.get(p, 0) for _, p in partitions},
        )
        self._needs_seek = False

    def recover(self) -> None:
        self._needs_seek = True
        self.cache.clear()
        self.recorder.intake_positions(self.topic)  # PostgreSQL answers, or this is an outage

    def progress(self) -> Progress:
        return Progress(self.watch.last_progress_wall, self.watch.lag, self.watch.rejoins)

    def _rejoin(self, stall: Stall) -> None:
        """Leave the group and join it again with a fresh consumer (see `ledger.liveness`)."""
        log.warning("worker.stalled", worker=self.name, action="rejoin", **stall.as_fields())
        self.close()
        self._needs_seek = True
        self.cache.clear()
        self.watch.restart()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # Work

    def step(self) -> bool:
        consumer = self._connect()
        if self._needs_seek:
            self._seek_to_stored(consumer.assignment())
        records = consumer.poll(timeout_ms=200)
        stall = self.watch.after_poll(consumer, len(records))
        if stall is not None:
            self._rejoin(stall)
            return True
        if not records:
            return False
        started = time.perf_counter()
        outcomes = self.handle_records(records)
        log.info(
            "intake.batch", records=len(records), seconds=round(time.perf_counter() - started, 4)
        )
        if log.is_enabled_for(logging.INFO):
            for outcome in outcomes:
                self._log(outcome)
        else:  # rejections are warnings: still one line each
            for outcome in outcomes:
                if outcome.status == "rejected":
                    self._log(outcome)
        ends: dict[tuple[str, int], int] = {}
        for record in records:
            ends[(record.topic, record.partition)] = record.offset + 1
        if self._needs_seek:  # a position conflict: PostgreSQL will say where to resume
            return True
        try:
            consumer.commit(ends)
        except LedgerError as error:  # progress is safe in PostgreSQL; Kafka's copy can wait
            log.warning("intake.offset_commit_failed", error=str(error))
        return True

    def handle_records(self, records: Sequence[Record]) -> list[Outcome]:
        """Decide and commit a batch; fall back to one record at a time if the batch fails."""
        try:
            return self._commit_batch(records)
        except OUTAGES:
            raise
        except Exception as error:  # noqa: BLE001 - whatever it was, the split isolates it
            self.cache.clear()  # a version conflict means some cached learner is stale
            log.warning("intake.batch_split", size=len(records), error=str(error)[:300])
        outcomes: list[Outcome] = []
        for record in records:
            try:
                outcomes.extend(self._commit_batch([record], isolated=True))
            except IntegrityError as error:
                # Another worker moved this partition on (a rebalance): re-read positions.
                log.warning(
                    "intake.position_conflict",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=str(error),
                )
                self._needs_seek = True
                break
            except OUTAGES:
                raise
            except Exception as error:
                log.exception(
                    "intake.unstorable",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                )
                self.cache.clear()
                outcomes.append(self._commit_unstorable(record, error))
        return outcomes

    def _commit_unstorable(self, record: Record, error: Exception) -> Outcome:
        """Keep a record whose outcome could not be stored as a rejection saying why, with
        its original bytes, and move its partition past it (one transaction, as always)."""
        message = (
            f"the ledger could not store the outcome of this message "
            f"({type(error).__name__}: {str(error)[:300]}); it is kept and can be retried "
            "once the fault is fixed"
        )
        rejected = RejectionError("unstorable", message)
        book = IntakeBookkeeping(
            positions=[IntakePosition(record.topic, record.partition, record.offset + 1)],
            rejections=[_rejection(record, rejected)],
        )
        self.ledger.session().commit(intake=book)
        return Outcome(record, "rejected", None, None, rejected.reason, message)

    def _commit_batch(self, records: Sequence[Record], *, isolated: bool = False) -> list[Outcome]:
        parsed: list[InboundMessage | RejectionError] = []
        for record in records:
            try:
                parsed.append(parse(record.value, record.headers))
            except RejectionError as error:
                parsed.append(error)
        messages = [p for p in parsed if isinstance(p, InboundMessage)]
        session = self.ledger.session(self.cache)
        book = IntakeBookkeeping()
        try:
            # What was accepted before and the learners the cache lacks: one read.
            wanted = session.uncached(aggregate_ids(messages))
            known, stored = self.recorder.batch_reads(
                [(m.source, m.message_id) for m in messages], wanted
            )
            session.adopt(wanted, self.ledger.aggregates_from(stored))
            outcomes = [
                self._decide(session, book, known, record, item, isolated=isolated)
                for record, item in zip(records, parsed, strict=True)
            ]
            next_offsets: dict[tuple[str, int], int] = {}
            for record in records:
                next_offsets[(record.topic, record.partition)] = record.offset + 1
            book.positions.extend(IntakePosition(t, p, o) for (t, p), o in next_offsets.items())
            session.commit(intake=book)
        except BaseException:
            session.discard()  # its learners may hold events that were never stored
            raise
        return outcomes

    def _decide(
        self,
        session: LedgerSession,
        book: IntakeBookkeeping,
        known: dict[tuple[str, str], str],
        record: Record,
        item: InboundMessage | RejectionError,
        *,
        isolated: bool,
    ) -> Outcome:
        """Decide one record of the batch: a rejection, a duplicate, or the ledger's call."""
        if isinstance(item, RejectionError):
            book.rejections.append(_rejection(record, item))
            return Outcome(record, "rejected", item.message_id, None, item.reason, item.message)
        key = (item.source, item.message_id)
        if key in known:
            if known[key] == item.digest:
                return Outcome(record, "duplicate", item.message_id, item.type)
            return self._reject(
                book,
                record,
                item,
                "conflict",
                f"message {item.message_id!r} from {item.source!r} was accepted "
                "before with different content; send changes under a new id",
            )
        try:
            handle(session, item)
        except LedgerError as error:
            return self._reject(book, record, item, error.code, str(error))
        except Exception as error:
            if not isolated:
                raise BatchAborted(f"{item.type} {item.message_id}: {error!r}") from error
            log.exception("intake.handler_failed", message_id=item.message_id)
            session.discard()
            return self._reject(
                book,
                record,
                item,
                "handler_failed",
                f"the ledger failed on this message ({type(error).__name__}: {error}); "
                "it is kept and can be retried once the fault is fixed",
            )
        known[key] = item.digest
        book.accepted.append(
            AcceptedMessage(
                item.source,
                item.message_id,
                item.digest,
                item.type,
                record.topic,
                record.partition,
                record.offset,
            )
        )
        return Outcome(record, "accepted", item.message_id, item.type)

    @staticmethod
    def _reject(
        book: IntakeBookkeeping, record: Record, item: InboundMessage, reason: str, message: str
    ) -> Outcome:
        rejected = RejectionError(reason, message, source=item.source, message_id=item.message_id)
        book.rejections.append(_rejection(record, rejected))
        return Outcome(record, "rejected", item.message_id, item.type, reason, message)

    def _log(self, outcome: Outcome) -> None:
        r = outcome.record
        fields = {
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "message_id": outcome.message_id,
            "type": outcome.message_type,
            "outcome": outcome.status,
        }
        if outcome.status == "rejected":
            log.warning("intake.message", reason=outcome.reason, detail=outcome.detail, **fields)
        else:
            log.info("intake.message", **fields)
