"""One batch of `ledger.events` applied to one read model: the code the live worker, a rebuild
and an audit's scratch copy all share, so they cannot disagree."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
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


def apply_batch(
    cur: Cursor[tuple[Any, ...]],
    model: ReadModel,
    schema: str,
    batch: Batch,
) -> set[tuple[str, int]]:
    """Apply the batch's new events to `model`'s tables in `schema`; return their identities.

    Only events the model has a handler for are considered: the others change nothing in it,
    so it neither loads rows nor records versions for them (a duplicate of such an event is
    harmless too). An event is new when its version is above the one stored for its
    aggregate. Rows of the learners and specializations concerned are loaded once, changed in
    memory, written back once; versions and offsets go in the same transaction (the caller's).
    """
    handlers = model.handlers
    relevant = [e for _, e in batch.events if e is not None and e.kind in handlers]
    fresh: list[LedgerEvent] = []
    changed: dict[str, int] = {}
    if relevant:
        seen = positions.load_versions(cur, schema, {e.aggregate_id for e in relevant})
        for event in relevant:
            if event.version <= seen.get(event.aggregate_id, 0):
                continue
            seen[event.aggregate_id] = changed[event.aggregate_id] = event.version
            fresh.append(event)
    if fresh:
        rows = model.rows()
        rows.load(cur, schema, sorted({e.subject for e in fresh}))
        for event in fresh:
            model.apply(rows, event)
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
