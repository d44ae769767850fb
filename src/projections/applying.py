"""One batch of `ledger.events` applied to one read model: the code the live worker, a rebuild
and an audit's scratch copy all share, so they cannot disagree."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection, Cursor

from ledger.broker import Record
from ledger.logs import get_logger
from projections import positions, skipped
from projections.events import LedgerEvent, MalformedEventError, read_event
from projections.model import ReadModel
from projections.rows import select_statement

log = get_logger(__name__)

SeenByPartition = dict[positions.Partition, positions.Seen]


@dataclass(frozen=True)
class Batch:
    """Records read back as events (None for a malformed one), and the offsets they end at;
    what was wrong with each malformed record, by offset."""

    events: list[tuple[Record, LedgerEvent | None]]
    next_offsets: dict[tuple[str, int], int]
    malformed: dict[tuple[str, int, int], str] = field(default_factory=dict)

    def one(self, index: int) -> Batch:
        """The batch of just its `index`-th record (to apply a failed batch event by event)."""
        record, event = self.events[index]
        where = (record.topic, record.partition, record.offset)
        malformed = {where: self.malformed[where]} if where in self.malformed else {}
        return Batch(
            [(record, event)], {(record.topic, record.partition): record.offset + 1}, malformed
        )


def read_batch(records: Sequence[Record]) -> Batch:
    events: list[tuple[Record, LedgerEvent | None]] = []
    offsets: dict[tuple[str, int], int] = {}
    malformed: dict[tuple[str, int, int], str] = {}
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
            malformed[(record.topic, record.partition, record.offset)] = str(error)
    return Batch(events, offsets, malformed)


class ModelState:
    """What one worker process knows of a read model's rows between batches.

    Everything in it is as committed in the database, as long as its keeper drops it whenever
    that may stop being true: when a batch's transaction fails, when partitions are reassigned
    (another process may then change these learners), and when a rebuild switches generations.
    Kept, it spares each batch the queries that load what earlier batches already read.
    """

    #: Learners (and specializations) whose rows one state holds before it starts afresh:
    #: about 10 MB of rows, so memory stays bounded however many learners pass through.
    LIMIT = 20_000

    def __init__(self, model: ReadModel) -> None:
        self.rows = model.rows()
        #: What the model has seen of each partition (`projections.positions`), as committed;
        #: None until a batch loads it.
        self.seen: SeenByPartition | None = None

    @property
    def full(self) -> bool:
        return self.rows.scopes > self.LIMIT


class Admissions:
    """Which events of one batch are new, worked out once for all the read models that stand
    at the same place.

    Read models written in one transaction (the live worker's) have stored the same positions;
    each would otherwise walk the whole batch for the same answer.
    """

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        #: (seen before the batch, its new events, seen after it), per place worked out.
        self._known: list[tuple[SeenByPartition, list[LedgerEvent], SeenByPartition]] = []

    def of(self, seen: SeenByPartition) -> tuple[list[LedgerEvent], SeenByPartition]:
        """The batch's new events for a model that had seen `seen` (left as it is), and what
        it has seen after them (not to be changed: other models may share it)."""
        for before, events, after in self._known:
            if before == seen:
                return events, after
        after = _copy_seen(seen)
        events = new_events(self.batch, after)
        self._known.append((_copy_seen(seen), events, after))
        return events, after


def _copy_seen(seen: SeenByPartition) -> SeenByPartition:
    return {p: positions.Seen(s.through, set(s.above)) for p, s in seen.items()}


def new_events(batch: Batch, seen: SeenByPartition) -> list[LedgerEvent]:
    """The batch's events not seen before, in order; from now on they count as seen."""
    fresh: list[LedgerEvent] = []
    where: positions.Partition | None = None
    state = positions.Seen()
    for record, event in batch.events:
        if event is None:
            continue
        if where is None or record.partition != where[1] or record.topic != where[0]:
            # Records come partition by partition: look the state up only when that changes.
            where = (record.topic, record.partition)
            state = seen.setdefault(where, positions.Seen())
        if state.admit(event.position, event.relayed_through):
            fresh.append(event)
    return fresh


#: Batches of up to this many records are applied in pipeline mode (`apply_together`): every
#: statement of every read model sent at once, two waits for PostgreSQL's answers a batch
#: instead of one per statement (about forty). Larger batches are applied statement by
#: statement, new rows with `COPY` (which pipeline mode cannot send): their fixed cost is
#: spread over their records, and psycopg 3.3 in pipeline mode can hang sending one large
#: statement over a Unix socket (`ledger.store`), which batches this small never make.
PIPELINED_MAX = 250

#: One read model's part in a batch: the model, its live schema, what the worker holds of it.
Part = tuple[ReadModel, str, ModelState]


def apply_batch(
    cur: Cursor[tuple[Any, ...]],
    model: ReadModel,
    schema: str,
    batch: Batch,
    state: ModelState | None = None,
    admissions: Admissions | None = None,
) -> set[tuple[str, int]]:
    """Apply the batch's new events to `model`'s tables in `schema`; return their identities
    (`apply_together` for one model, in the caller's transaction on `cur`'s connection)."""
    part = (model, schema, ModelState(model) if state is None else state)
    return apply_together(cur.connection, [part], batch, admissions)[model.name]


def apply_together(
    conn: Connection[Any],
    parts: Sequence[Part],
    batch: Batch,
    admissions: Admissions | None = None,
    check: Callable[[], None] | None = None,
    *,
    copy: bool = True,
) -> dict[str, set[tuple[str, int]]]:
    """Apply the batch's new events to each part's tables; return their identities by model.

    New means not seen before in its partition (`projections.positions`), and only events a
    model has a handler for are applied: the others change nothing in it. Rows of the learners
    and specializations concerned are loaded once, changed in memory, written back once; what
    was seen and where each partition ends go in the same transaction (the caller's). Only
    rows a part's state does not hold yet are loaded, and what it has seen only if it does
    not hold that either; models that stand at the same place work out what is new once (the
    batch's `admissions`).

    Every query is sent before any answer is read, so in pipeline mode (the caller's: then
    `copy` must be false) the batch waits for PostgreSQL twice, or three times when some
    part's positions are not held yet. `check` runs once the queries are sent and before their
    answers are used (the live worker's guard against a switch of generations)."""
    if admissions is None:
        admissions = Admissions(batch)
    unseen = [
        (state, conn.execute(positions.load_seen_statement(schema)))
        for _, schema, state in parts
        if state.seen is None
    ]
    for state, found in unseen:
        state.seen = positions.seen_from(found.fetchall())
    planned = []
    for model, schema, state in parts:
        assert state.seen is not None  # noqa: S101 - loaded just above
        new, seen = admissions.of(state.seen)
        fresh = handled(model, new)
        queries = [
            (table, conn.execute(select_statement(table, schema), (asked,)))
            for table, asked in state.rows.to_load(scopes_of(fresh))
        ]
        planned.append((model, schema, state, fresh, seen, queries))
    if check is not None:
        check()
    applied: dict[str, set[tuple[str, int]]] = {}
    with conn.cursor() as cur:
        for model, schema, state, fresh, seen, queries in planned:
            for table, found in queries:
                state.rows.take(table, found.fetchall())
            applied[model.name] = _apply_loaded(model, state, fresh)
            write_back(cur, schema, state, batch.next_offsets, seen, batch.malformed, copy=copy)
            state.seen = seen
    return applied


#: The kinds of the catalog's events: their subject is a specialization id; every other event's
#: is a learner id (`projections.events`).
CATALOG_KINDS = "ledger.specialization."


def scopes_of(events: Sequence[LedgerEvent]) -> dict[str, set[str]]:
    """The rows `events` may reach, by scope column: the catalog's events reach their
    specialization's rows, every other event its learner's."""
    learners: set[str] = set()
    specializations: set[str] = set()
    for event in events:
        (specializations if event.kind.startswith(CATALOG_KINDS) else learners).add(event.subject)
    return {"learner_id": learners, "specialization_id": specializations}


def apply_in_memory(
    cur: Cursor[tuple[Any, ...]],
    model: ReadModel,
    schema: str,
    new: Sequence[LedgerEvent],
    state: ModelState,
) -> set[tuple[str, int]]:
    """Apply `new` events to the rows `state` holds, loading those of learners (and
    specializations) it does not hold yet; nothing is written. Their identities."""
    fresh = handled(model, new)
    if fresh:
        state.rows.load(cur, schema, scopes_of(fresh))
    return _apply_loaded(model, state, fresh)


def handled(model: ReadModel, events: Sequence[LedgerEvent]) -> list[LedgerEvent]:
    """The events `model` has a handler for (the others change nothing in it)."""
    handlers = model.handlers
    return [e for e in events if e.kind in handlers]


def _apply_loaded(
    model: ReadModel, state: ModelState, fresh: Sequence[LedgerEvent]
) -> set[tuple[str, int]]:
    """Apply `fresh` to the rows `state` holds (their scopes loaded); their identities."""
    apply, rows = model.apply, state.rows
    for event in fresh:
        apply(rows, event)
    return {(e.aggregate_id, e.version) for e in fresh}


def write_back(
    cur: Cursor[tuple[Any, ...]],
    schema: str,
    state: ModelState,
    next_offsets: dict[tuple[str, int], int],
    seen: SeenByPartition,
    malformed: dict[tuple[str, int, int], str],
    *,
    copy: bool = True,
) -> None:
    """Write what `state`'s rows changed since their last write, where each partition ends and
    what has been seen of it, and the malformed records skipped: in the caller's transaction
    (new rows with `COPY` unless `copy` is false: `Rows.flush`)."""
    state.rows.flush(cur, schema, copy=copy)
    positions.save(cur, schema, next_offsets, seen)
    for (topic, partition, offset), error in malformed.items():
        skipped.record(cur, schema, skipped.Skipped(topic, partition, offset, None, None, error))


def skip_batch(cur: Cursor[tuple[Any, ...]], schema: str, batch: Batch, error: str) -> None:
    """Move the model past `batch` (one event that failed alone) without applying it, and keep
    the failure (`projections.skipped`), in the caller's transaction."""
    _, seen = Admissions(batch).of(positions.load_seen(cur, schema))
    positions.save(cur, schema, batch.next_offsets, seen)
    for record, event in batch.events:
        skipped.record(
            cur,
            schema,
            skipped.Skipped(
                record.topic,
                record.partition,
                record.offset,
                None if event is None else f"{event.aggregate_id}:{event.version}",
                None if event is None else event.type,
                error,
            ),
        )


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
