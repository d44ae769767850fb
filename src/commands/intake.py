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

With the event store in shards (`docs/sharding.md`), each shard keeps its own positions for
every partition: its own partitions' messages and every partition's catalog messages are applied
there, each shard's part of a batch in that shard's own transaction. The consumer seeks each
partition to the lowest position of the shards that answer, and each shard takes from a batch
only what is at or past its own. A shard that stops answering is left behind while the others
go on; when it answers again, the partitions are read again from its positions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands.cloudevents import InboundMessage, RejectionError, parse
from commands.handlers import handle
from commands.messages import CatalogData
from ledger.application import LearnerCache, Ledger, LedgerSession
from ledger.broker import BrokerUnavailableError, Consumer, Record
from ledger.domain import learner_aggregate_id, specialization_aggregate_id
from ledger.errors import LedgerError
from ledger.heartbeats import Progress
from ledger.liveness import ConsumerWatch, Stall
from ledger.logs import get_logger
from ledger.settings import Settings
from ledger.sharding import Layout
from ledger.store import (
    AcceptedMessage,
    IntakeBookkeeping,
    IntakePosition,
    LedgerRecorder,
    Rejection,
)
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


#: How often a worker looks again at a shard that stopped answering (seconds).
SHARD_RETRY_S = 5.0


@dataclass
class _Shard:
    """One shard of the event store as the intake sees it."""

    index: int
    ledger: Ledger
    cache: LearnerCache
    #: Next offset to apply, per partition, as stored in this shard (read at every seek).
    positions: dict[int, int]
    #: When it stopped answering (None while it answers), and when it was last tried.
    down_since: float | None = None
    tried_at: float = 0.0

    @property
    def recorder(self) -> LedgerRecorder:
        return self.ledger.ledger_recorder


def _is_catalog(item: InboundMessage | RejectionError) -> bool:
    """A catalog message (a specialization published, revised, retired): every shard needs it."""
    return isinstance(item, InboundMessage) and isinstance(item.data, CatalogData)


def _subject(item: InboundMessage) -> str:
    subject: str = item.data.subject()
    return subject


class IntakeWorker:
    """Consumes `ledger.intake` in the `ledger-intake` consumer group."""

    name = "intake"
    #: After a poll that returned nothing (it waited up to 200 ms for records), look again
    #: almost at once: a longer pause only delays the next message.
    idle_wait_s = 0.01

    def __init__(
        self,
        ledger: Ledger,
        settings: Settings,
        bootstrap: str,
        max_batch: int = 2000,
        *,
        more_shards: Sequence[Ledger] = (),
        reopen: Callable[[int], Ledger] | None = None,
    ) -> None:
        """`ledger` is the first shard of the event store, `more_shards` the others, in order;
        `reopen(n)` opens shard n's `Ledger` afresh, for a shard whose server was away (its
        pool would take tens of seconds to trust the server again): then the worker closes the
        one it had, so it must be the worker's own."""
        self.ledger = ledger
        self.recorder = ledger.ledger_recorder
        self.settings = settings
        self.bootstrap = bootstrap
        self.max_batch = max_batch
        self.topic = settings.intake_topic
        self.layout = Layout(1 + len(more_shards), settings.partitions)
        self.shards = [
            _Shard(n, shard, LearnerCache(), {}) for n, shard in enumerate([ledger, *more_shards])
        ]
        self.cache = self.shards[0].cache
        self.reopen = reopen
        self._consumer: Consumer | None = None
        self._needs_seek = True
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
        self._clear_caches()  # learners of partitions another worker had may have moved on
        self._seek_to_stored(partitions)

    def _clear_caches(self) -> None:
        for shard in self.shards:
            shard.cache.clear()

    def _seek_to_stored(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Seek each partition to the lowest position of the shards that answer (one shard:
        its position), reading every shard's positions afresh."""
        consumer = self._consumer
        if consumer is None or not partitions:
            return
        up = self._read_positions()
        for topic, partition in partitions:
            known = [shard.positions.get(partition) for shard in up]
            if any(position is None for position in known):
                consumer.seek_to_beginning(topic, partition)
            else:
                consumer.seek(topic, partition, min(p for p in known if p is not None))
        log.info(
            "intake.positions",
            assigned=[p for _, p in partitions],
            positions={p: min(shard.positions.get(p, 0) for shard in up) for _, p in partitions},
            **({"shards": [s.index + 1 for s in up]} if len(self.shards) > 1 else {}),
        )
        self._needs_seek = False

    def _read_positions(self) -> list[_Shard]:
        """Read each shard's positions; return the shards that answered. A shard that does not
        is left behind (its partitions are read again when it answers); if none answers,
        that is an outage of the whole intake, raised to the supervisor."""
        up: list[_Shard] = []
        failure: BaseException | None = None
        for shard in self.shards:
            if shard.down_since is not None and len(self.shards) > 1:
                continue
            try:
                shard.positions = shard.recorder.intake_positions(self.topic)
            except OUTAGES as error:
                if len(self.shards) == 1:
                    raise
                failure = error
                self._shard_down(shard, error)
                continue
            up.append(shard)
        if not up:
            raise failure or BrokerUnavailableError("no shard of the event store answers")
        return up

    def _shard_down(self, shard: _Shard, error: BaseException) -> None:
        now = time.monotonic()
        if shard.down_since is None:
            shard.down_since = now
            log.warning(
                "intake.shard_unavailable",
                shard=shard.index + 1,
                error=f"{type(error).__name__}: {error}"[:300],
                retry_s=SHARD_RETRY_S,
            )
        shard.tried_at = now
        shard.cache.clear()

    def _retry_shards(self) -> None:
        """Try the shards that stopped answering, each at most every `SHARD_RETRY_S`; one
        that answers again gets its partitions read again from its positions."""
        now = time.monotonic()
        for shard in self.shards:
            if shard.down_since is None or now - shard.tried_at < SHARD_RETRY_S:
                continue
            shard.tried_at = now
            if not shard.recorder.reachable():
                continue
            if self.reopen is not None:
                stale, shard.ledger = shard.ledger, self.reopen(shard.index)
                stale.close()  # its pool would fill again with connections nobody uses
            try:
                shard.recorder.intake_positions(self.topic)
            except OUTAGES:
                continue
            log.info(
                "intake.shard_back",
                shard=shard.index + 1,
                down_s=round(now - shard.down_since, 1),
            )
            shard.down_since = None
            self._needs_seek = True

    def recover(self) -> None:
        self._needs_seek = True
        self._clear_caches()
        for shard in self.shards:
            shard.down_since = None
        self._read_positions()  # some shard answers, or this is still an outage

    def progress(self) -> Progress:
        return Progress(self.watch.last_progress_wall, self.watch.lag, self.watch.rejoins)

    def _rejoin(self, stall: Stall) -> None:
        """Leave the group and join it again with a fresh consumer (see `ledger.liveness`)."""
        log.warning("worker.stalled", worker=self.name, action="rejoin", **stall.as_fields())
        self.close()
        self._needs_seek = True
        self._clear_caches()
        self.watch.restart()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # Work

    def step(self) -> bool:
        consumer = self._connect()
        if len(self.shards) > 1:
            self._retry_shards()
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
        """Decide and commit a batch, each shard its part in its own transaction (one shard:
        the whole batch); the outcomes of the records each home shard decided."""
        parsed = [self._parse(record) for record in records]
        outcomes: list[Outcome] = []
        for shard in [shard for shard in self.shards if shard.down_since is None]:
            mine: list[tuple[Record, InboundMessage | RejectionError]] = []
            for record, item in zip(records, parsed, strict=True):
                if record.offset < shard.positions.get(record.partition, 0):
                    continue  # applied in this shard before (a partition read again)
                if self.layout.shard(record.partition) == shard.index or _is_catalog(item):
                    mine.append((record, item))
            ends = self._ends(shard, records)
            if not ends:
                continue
            try:
                decided = self._handle_shard(shard, mine, ends)
            except OUTAGES as error:
                if len(self.shards) == 1:
                    raise
                self._shard_down(shard, error)
                continue
            outcomes.extend(
                o for o in decided if self.layout.shard(o.record.partition) == shard.index
            )
        if all(shard.down_since is not None for shard in self.shards):
            raise BrokerUnavailableError("no shard of the event store answers")
        return outcomes

    def _parse(self, record: Record) -> InboundMessage | RejectionError:
        """The record's message, or why it is refused; with shards, a message must have come
        on the partition its subject's key goes to (`ledger.sharding`), or its learner's
        history would be split between shards."""
        try:
            item = parse(record.value, record.headers)
        except RejectionError as error:
            return error
        if len(self.shards) > 1:
            expected = self.layout.partition(_subject(item))
            if expected != record.partition:
                return RejectionError(
                    "wrong_partition",
                    f"this message about {_subject(item)!r} came on partition "
                    f"{record.partition}, but its key belongs on partition {expected}: with the "
                    "event store in shards, key every message by its learner id (or, for the "
                    "catalog, its specialization id) and place keys with murmur2, as Kafka's "
                    "Java client and kafka-python do (librdkafka: partitioner=murmur2_random)",
                    source=item.source,
                    message_id=item.message_id,
                )
        return item

    @staticmethod
    def _ends(shard: _Shard, records: Sequence[Record]) -> dict[tuple[str, int], int]:
        """The position each partition of the batch moves to in `shard`: only where the batch
        goes past what the shard has applied."""
        ends: dict[tuple[str, int], int] = {}
        for record in records:
            if record.offset >= shard.positions.get(record.partition, 0):
                ends[(record.topic, record.partition)] = record.offset + 1
        return ends

    def _handle_shard(
        self,
        shard: _Shard,
        pairs: list[tuple[Record, InboundMessage | RejectionError]],
        ends: dict[tuple[str, int], int],
    ) -> list[Outcome]:
        """Commit one shard's part of a batch; fall back to one record at a time if it fails."""
        try:
            outcomes = self._commit_batch(shard, pairs, ends)
        except OUTAGES:
            raise
        except Exception as error:  # noqa: BLE001 - whatever it was, the split isolates it
            shard.cache.clear()  # a version conflict means some cached learner is stale
            log.warning("intake.batch_split", size=len(pairs), error=str(error)[:300])
        else:
            self._moved(shard, ends)
            return outcomes
        outcomes = []
        reached: dict[tuple[str, int], int] = {}
        for record, item in pairs:
            at = {(record.topic, record.partition): record.offset + 1}
            try:
                outcomes.extend(self._commit_batch(shard, [(record, item)], at, isolated=True))
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
                return outcomes
            except OUTAGES:
                raise
            except Exception as error:
                log.exception(
                    "intake.unstorable",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                )
                shard.cache.clear()
                outcomes.append(self._commit_unstorable(shard, record, error))
            reached.update(at)
            self._moved(shard, at)
        # Partitions whose last records were not this shard's to apply move on too.
        rest = {tp: end for tp, end in ends.items() if reached.get(tp, -1) < end}
        if rest:
            self._commit_batch(shard, [], rest)
            self._moved(shard, rest)
        return outcomes

    @staticmethod
    def _moved(shard: _Shard, ends: dict[tuple[str, int], int]) -> None:
        for (_topic, partition), end in ends.items():
            shard.positions[partition] = end

    def _commit_unstorable(self, shard: _Shard, record: Record, error: Exception) -> Outcome:
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
        shard.ledger.session().commit(intake=book)
        return Outcome(record, "rejected", None, None, rejected.reason, message)

    def _commit_batch(
        self,
        shard: _Shard,
        pairs: Sequence[tuple[Record, InboundMessage | RejectionError]],
        ends: dict[tuple[str, int], int],
        *,
        isolated: bool = False,
    ) -> list[Outcome]:
        messages = [item for _, item in pairs if isinstance(item, InboundMessage)]
        session = shard.ledger.session(shard.cache)
        book = IntakeBookkeeping()
        try:
            # What was accepted before and the learners the cache lacks: one read.
            wanted = session.uncached(aggregate_ids(messages))
            known, stored = shard.recorder.batch_reads(
                [(m.source, m.message_id) for m in messages], wanted
            )
            session.adopt(wanted, shard.ledger.aggregates_from(stored))
            outcomes = [
                self._decide(session, book, known, record, item, isolated=isolated)
                for record, item in pairs
            ]
            book.positions.extend(IntakePosition(t, p, o) for (t, p), o in ends.items())
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
