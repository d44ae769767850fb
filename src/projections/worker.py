"""The projection worker: `ledger.events` in, read-model rows out, each event applied once.

It polls a batch, skips events whose version is not above the one stored for their aggregate
(republished by a relay restart, or redelivered by Kafka), applies the rest in order, and writes
the rows, the per-aggregate versions and the partition offsets in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from ledger.broker import Consumer, Record
from ledger.errors import LedgerError
from ledger.logs import get_logger
from ledger.settings import Settings
from projections import learner_progress, positions
from projections.events import LedgerEvent, MalformedEventError, read_event

log = get_logger(__name__)


@dataclass(frozen=True)
class ReadModel:
    """A read model as the worker sees it: a name, its DDL and its `apply` function."""

    name: str
    ddl: str
    apply: Callable[[psycopg.Cursor[Any], LedgerEvent], None]


READ_MODELS: tuple[ReadModel, ...] = (
    ReadModel(learner_progress.NAME, learner_progress.DDL, learner_progress.apply),
)


def create_tables(conn: psycopg.Connection[Any]) -> None:
    """Create every projection table that does not exist yet (idempotent)."""
    with conn.transaction():
        conn.execute(positions.DDL)
        for model in READ_MODELS:
            conn.execute(model.ddl)


class ProjectionWorker:
    """Consumes `ledger.events` in the `ledger-projections` group and updates every read model."""

    name = "projections"

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        bootstrap: str,
        max_batch: int = 2000,
        read_models: Sequence[ReadModel] = READ_MODELS,
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.bootstrap = bootstrap
        self.max_batch = max_batch
        self.read_models = tuple(read_models)
        self.topic = settings.events_topic
        self._conn: psycopg.Connection[Any] | None = None
        self._consumer: Consumer | None = None
        self._needs_seek = True

    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, connect_timeout=5, autocommit=True)
        return self._conn

    def _connect(self) -> Consumer:
        if self._consumer is None:
            consumer = Consumer(
                self.bootstrap,
                self.settings.group_id("projections"),
                "ledger-projections",
                self.max_batch,
            )
            consumer.subscribe([self.topic], self._seek_to_stored, lambda _revoked: None)
            self._consumer = consumer
        return self._consumer

    def _seek_to_stored(self, partitions: list[tuple[str, int]]) -> None:
        consumer = self._consumer
        if consumer is None or not partitions:
            return
        with self._db().cursor() as cur:
            # The slowest read model decides where to resume; faster ones skip by version.
            stored = [positions.load_offsets(cur, m.name, self.topic) for m in self.read_models]
        for topic, partition in partitions:
            offsets = [s.get(partition) for s in stored]
            if any(o is None for o in offsets):
                consumer.seek_to_beginning(topic, partition)
            else:
                consumer.seek(topic, partition, min(o for o in offsets if o is not None))
        self._needs_seek = False

    def recover(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._needs_seek = True

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def step(self) -> bool:
        consumer = self._connect()
        if self._needs_seek:
            self._seek_to_stored(consumer.assignment())
        records = consumer.poll(timeout_ms=200)
        if not records:
            return False
        self.apply_records(records)
        ends: dict[tuple[str, int], int] = {}
        for record in records:
            ends[(record.topic, record.partition)] = record.offset + 1
        try:
            consumer.commit(ends)
        except LedgerError as error:
            log.warning("projections.offset_commit_failed", error=str(error))
        return True

    def apply_records(self, records: Sequence[Record]) -> int:
        """Apply a batch to every read model in one transaction; return events applied."""
        events: list[tuple[Record, LedgerEvent | None]] = []
        for record in records:
            try:
                events.append((record, read_event(record)))
            except MalformedEventError as error:
                log.error(  # noqa: TRY400 - the reason is in the message; no traceback needed
                    "projections.malformed",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=str(error),
                )
                events.append((record, None))
        offsets: dict[tuple[str, int], int] = {}
        for record in records:
            offsets[(record.topic, record.partition)] = record.offset + 1
        conn = self._db()
        applied = 0
        with conn.transaction(), conn.cursor() as cur:
            for model in self.read_models:
                seen = positions.load_versions(
                    cur, model.name, [e.aggregate_id for _, e in events if e is not None]
                )
                changed: dict[Any, int] = {}
                for record, event in events:
                    if event is None:
                        continue
                    if event.version <= seen.get(event.aggregate_id, 0):
                        log.info(
                            "projections.event",
                            projection=model.name,
                            topic=record.topic,
                            partition=record.partition,
                            offset=record.offset,
                            event_id=f"{event.aggregate_id}:{event.version}",
                            type=event.type,
                            outcome="already_applied",
                        )
                        continue
                    model.apply(cur, event)
                    seen[event.aggregate_id] = changed[event.aggregate_id] = event.version
                    applied += 1
                    log.info(
                        "projections.event",
                        projection=model.name,
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        event_id=f"{event.aggregate_id}:{event.version}",
                        type=event.type,
                        subject=event.subject,
                        outcome="applied",
                    )
                positions.save_versions(cur, model.name, changed)
                positions.save_offsets(
                    cur, model.name, [(t, p, o) for (t, p), o in offsets.items()]
                )
        return applied
