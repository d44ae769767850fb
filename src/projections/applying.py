"""One batch of `ledger.events` applied to one read model: the code the live worker, a rebuild
and an audit's scratch copy all share, so they cannot disagree."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from psycopg import Cursor

from ledger.broker import Record
from ledger.logs import get_logger
from projections import positions
from projections.events import LedgerEvent, MalformedEventError, read_event
from projections.model import ReadModel

log = get_logger(__name__)


@dataclass(frozen=True)
class Batch:
    """Records read back as events (None for a malformed one), and the offsets they end at."""

    events: list[tuple[Record, LedgerEvent | None]]
    next_offsets: dict[tuple[str, int], int]

    @cached_property
    def readable(self) -> list[LedgerEvent]:
        """The events that are not malformed, in order: what every read model goes through."""
        return [e for _, e in self.events if e is not None]


def read_batch(records: Sequence[Record]) -> Batch:
    events: list[tuple[Record, LedgerEvent | None]] = []
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        offsets[(record.topic, record.partition)] = record.offset + 1
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
    return Batch(events, offsets)


class ModelState:
    """What one worker process knows of a read model's rows and versions between batches.

    Everything in it is as committed in the database, as long as its keeper drops it whenever
    that may stop being true: when a batch's transaction fails, when partitions are reassigned
    (another process may then change these learners), and when a rebuild switches generations.
    Kept, it spares each batch the queries that load what earlier batches already read.
    """

    #: Learners (and specializations) whose rows one state holds before it starts afresh:
    #: about 10 MB of rows, so memory stays bounded however many learners pass through.
    LIMIT = 20_000

    def __init__(self, model: ReadModel) -> None:
        self.model = model
        self.rows = model.rows()
        #: The version applied last per aggregate: 0 for one known to have none applied.
        self.versions: dict[str, int] = {}

    def versions_of(
        self, cur: Cursor[tuple[Any, ...]], schema: str, ids: set[str]
    ) -> dict[str, int]:
        """`versions`, after loading the aggregates among `ids` not known yet."""
        unknown = ids - self.versions.keys()
        if unknown:
            stored = positions.load_versions(cur, schema, unknown)
            self.versions.update({a: stored.get(a, 0) for a in unknown})
        return self.versions

    @property
    def full(self) -> bool:
        return self.rows.scopes > self.LIMIT or len(self.versions) > self.LIMIT


def apply_batch(
    cur: Cursor[tuple[Any, ...]],
    model: ReadModel,
    schema: str,
    batch: Batch,
    state: ModelState | None = None,
) -> set[tuple[str, int]]:
    """Apply the batch's new events to `model`'s tables in `schema`; return their identities.

    Only events the model has a handler for are considered: the others change nothing in it,
    so it neither loads rows nor records versions for them (a duplicate of such an event is
    harmless too). An event is new when its version is above the one stored for its
    aggregate. Rows of the learners and specializations concerned are loaded once, changed in
    memory, written back once; versions and offsets go in the same transaction (the caller's).
    With a `state` from earlier batches, only what it does not hold yet is loaded.
    """
    if state is None:
        state = ModelState(model)
    handlers = model.handlers
    relevant = [e for e in batch.readable if e.kind in handlers]
    fresh: list[LedgerEvent] = []
    changed: dict[str, int] = {}
    if relevant:
        seen = state.versions_of(cur, schema, {e.aggregate_id for e in relevant})
        for event in relevant:
            if event.version <= seen[event.aggregate_id]:
                continue
            seen[event.aggregate_id] = changed[event.aggregate_id] = event.version
            fresh.append(event)
    if fresh:
        rows = state.rows
        rows.load(cur, schema, {e.subject for e in fresh})
        apply = model.apply
        for event in fresh:
            apply(rows, event)
        rows.flush(cur, schema)
        positions.save_versions(cur, schema, changed)
    positions.save_offsets(cur, schema, [(t, p, o) for (t, p), o in batch.next_offsets.items()])
    return {(e.aggregate_id, e.version) for e in fresh}


def log_batch(batch: Batch, applied: dict[str, set[tuple[str, int]]]) -> None:
    """One log line per event handled: which read models applied it (none: a duplicate, or an
    event no read model shows)."""
    if not log.is_enabled_for(logging.INFO):
        return  # building thousands of lines' fields only to drop them showed in profiles
    for record, event in batch.events:
        if event is None:
            continue  # read_batch logged it as malformed
        identity = (event.aggregate_id, event.version)
        models = [name for name, done in applied.items() if identity in done]
        log.info(
            "projections.event",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            event_id=f"{event.aggregate_id}:{event.version}",
            type=event.type,
            subject=event.subject,
            outcome="applied" if models else "unchanged",
            read_models=models,
        )
