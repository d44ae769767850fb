"""The projection worker: `ledger.events` in, read-model rows out, each event applied once.

It polls a batch, skips events it has seen before (republished by a relay restart; how it knows:
`projections.positions`), applies the rest in order, and writes the rows and where each
partition stands in one transaction. A batch that fails is applied again event by event, each
read model in a savepoint of its own, and an event a model cannot apply is skipped by that model
alone, with the reason (`projections.skipped`): one bad event never stops a partition. A consumer
that stops receiving while records wait is replaced by a fresh one (`ledger.liveness`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from ledger.broker import Consumer, Record
from ledger.errors import LedgerError
from ledger.heartbeats import Progress
from ledger.liveness import ConsumerWatch, Stall
from ledger.logs import get_logger
from ledger.settings import Settings
from ledger.supervision import OUTAGES, collection_deferred
from projections import generations, positions
from projections.applying import (
    PIPELINED_MAX,
    Admissions,
    Batch,
    ModelState,
    apply_batch,
    apply_together,
    log_batch,
    read_batch,
    skip_batch,
)
from projections.catalog import READ_MODELS
from projections.model import ReadModel

log = get_logger(__name__)


def create_tables(conn: psycopg.Connection[Any]) -> None:
    """Give every read model a live generation with all its tables (idempotent)."""
    for model in READ_MODELS:
        generations.ensure_live(conn, model)


class _Switched(Exception):  # noqa: N818 - control flow inside this module
    """A rebuild made another generation live: resume from its positions."""


#: Every read model's live generation, share-locked until the batch's transaction ends: a
#: rebuild cannot switch one in the middle of the batch.
_LIVE_LOCKED = (
    "SELECT projection, schema_name FROM projection_generations"
    " WHERE projection = ANY(%s) AND state = 'live' FOR SHARE"
)

_SWITCHED_OR_OUTAGE: tuple[type[BaseException], ...] = (_Switched, *OUTAGES)


class ProjectionWorker:
    """Consumes `ledger.events` in the `ledger-projections` group and updates every read model."""

    name = "projections"
    #: After a poll that returned nothing (it waited up to 200 ms for records), look again
    #: almost at once: a longer pause only delays the next message.
    idle_wait_s = 0.01

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        bootstrap: str,
        max_batch: int = 5000,
        read_models: Sequence[ReadModel] = READ_MODELS,
    ) -> None:
        # Each batch costs a few statements per read model whatever its size; 5,000 records
        # per batch measured about 15% faster than 2,000 (`ledger bench projections`).
        self.settings = settings
        self.database_url = database_url
        self.bootstrap = bootstrap
        self.max_batch = max_batch
        self.read_models = tuple(read_models)
        self.topic = settings.events_topic
        self._conn: psycopg.Connection[Any] | None = None
        self._consumer: Consumer | None = None
        self._needs_seek = True
        #: The live schema of each model, as of the last seek.
        self._schemas: dict[str, str] = {}
        #: Rows each model's batches have loaded (see `ModelState` for when
        #: they are dropped).
        self._states: dict[str, ModelState] = {}
        self.watch = ConsumerWatch()

    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, connect_timeout=5, autocommit=True)
        return self._conn

    def consumer(self) -> Consumer:
        """The group member, connected and subscribed on first use."""
        return self._connect()

    def _connect(self) -> Consumer:
        if self._consumer is None:
            consumer = Consumer(
                self.bootstrap,
                self.settings.group_id("projections"),
                "ledger-projections",
                self.max_batch,
                encoded_headers=True,  # read_event reads them (see `ledger.kafka_records`)
            )
            consumer.subscribe([self.topic], self._seek_to_stored, self._forget)
            self._consumer = consumer
        return self._consumer

    def _forget(self, _partitions: object = None) -> None:
        """Drop what earlier batches loaded: another process may change those learners now, or
        a failed transaction left changes in memory that never reached the database."""
        self._states.clear()

    def _seek_to_stored(self, partitions: list[tuple[str, int]]) -> None:
        self._forget()
        consumer = self._consumer
        if consumer is None or not partitions:
            return
        stored: list[dict[int, int]] = []
        with self._db().cursor() as cur:
            for model in self.read_models:
                generation = generations.live(cur, model.name)
                if generation is None:
                    raise LedgerError(f"read model {model.name!r} has no live generation")
                self._schemas[model.name] = generation.schema
                # The slowest read model decides where to resume; faster ones skip what they saw.
                stored.append(positions.load_offsets(cur, generation.schema, self.topic))
        for topic, partition in partitions:
            offsets = [s.get(partition) for s in stored]
            if any(o is None for o in offsets):
                consumer.seek_to_beginning(topic, partition)
            else:
                consumer.seek(topic, partition, min(o for o in offsets if o is not None))
        log.info(
            "projections.positions", assigned=[p for _, p in partitions], schemas=self._schemas
        )
        self._needs_seek = False

    def recover(self) -> None:
        self._forget()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._needs_seek = True
        self._db().execute("SELECT 1")  # PostgreSQL answers, or this is an outage

    def progress(self) -> Progress:
        return Progress(self.watch.last_progress_wall, self.watch.lag, self.watch.rejoins)

    def _rejoin(self, stall: Stall) -> None:
        """Leave the group and join it again with a fresh consumer (see `ledger.liveness`)."""
        log.warning("worker.stalled", worker=self.name, action="rejoin", **stall.as_fields())
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._forget()
        self._needs_seek = True
        self.watch.restart()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def step(self) -> bool:
        # The batch is made and dropped inside `_step`, so the collection that may follow
        # finds it gone rather than walking it.
        with collection_deferred():
            return self._step()

    def _step(self) -> bool:
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
        try:
            batch = self.apply_records(records)
        except _Switched:
            self._needs_seek = True
            return True
        log.info(
            "projections.batch",
            records=len(records),
            seconds=round(time.perf_counter() - started, 4),
        )
        try:
            consumer.commit(batch.next_offsets)
        except LedgerError as error:
            log.warning("projections.offset_commit_failed", error=str(error))
        return True

    def _apply(self, batch: Batch) -> dict[str, set[tuple[str, int]]]:
        """Every read model's share of `batch`, in one transaction: what each applied.

        A small batch goes in pipeline mode (`applying.PIPELINED_MAX`): at a moderate load
        batches are small, and waiting for PostgreSQL's answer to each of some forty
        statements was most of their time."""
        conn = self._db()
        pipelined = len(batch.events) <= PIPELINED_MAX
        parts = [(m, self._schemas.get(m.name, ""), self._state(m)) for m in self.read_models]
        with conn.transaction(), conn.pipeline() if pipelined else contextlib.nullcontext():
            live = self._lock_live(conn)
            return apply_together(
                conn,
                parts,
                batch,
                Admissions(batch),
                lambda: self._check_live(live),
                copy=not pipelined,
            )

    def _lock_live(self, conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
        """Send the share-locking query of every model's live generation (`_check_live`
        reads its answer: in pipeline mode, once the batch's other queries are sent too)."""
        return conn.execute(_LIVE_LOCKED, ([m.name for m in self.read_models],))

    def _check_live(self, locked: psycopg.Cursor[Any]) -> None:
        """Raise `_Switched` unless every model's live schema is the one it was sought in."""
        live = {str(name): str(schema) for name, schema in locked.fetchall()}
        for model in self.read_models:
            if live.get(model.name) != self._schemas.get(model.name):
                log.info("projections.switched", projection=model.name)
                raise _Switched(model.name)

    def _apply_alone(self, batch: Batch) -> dict[str, set[tuple[str, int]]]:
        """One event, each read model in a savepoint: a model that fails on it skips it."""
        conn = self._db()
        applied: dict[str, set[tuple[str, int]]] = {}
        with conn.transaction(), conn.cursor() as cur:
            self._check_live(self._lock_live(conn))
            for model in self.read_models:
                schema = self._schemas[model.name]
                try:
                    with conn.transaction():
                        applied[model.name] = apply_batch(
                            cur, model, schema, batch, ModelState(model)
                        )
                except OUTAGES:
                    raise
                except Exception as error:
                    record = batch.events[0][0]
                    log.exception(
                        "projections.skipped",
                        projection=model.name,
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                    )
                    skip_batch(cur, schema, batch, f"{type(error).__name__}: {error}")
                    applied[model.name] = set()
        return applied

    def _state(self, model: ReadModel) -> ModelState:
        state = self._states.get(model.name)
        if state is None or state.full:
            state = self._states[model.name] = ModelState(model)
        return state

    def apply_records(self, records: Sequence[Record]) -> Batch:
        """Apply a batch to every read model in one transaction; return it as read.

        If that fails for any reason but an outage or a switch of generations, the batch is
        applied again one event at a time (`_apply_alone`)."""
        batch = read_batch(records)
        try:
            applied = self._apply(batch)
        except _SWITCHED_OR_OUTAGE:
            self._forget()
            raise
        except Exception as error:  # noqa: BLE001 - whatever it was, the split isolates it
            self._forget()
            log.warning("projections.batch_split", size=len(records), error=str(error)[:300])
            applied = {}
            for index in range(len(batch.events)):
                for name, done in self._apply_alone(batch.one(index)).items():
                    applied.setdefault(name, set()).update(done)
        log_batch(batch, applied)
        return batch
