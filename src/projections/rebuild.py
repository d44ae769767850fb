"""Rebuilding a read model from the start of `ledger.events`, beside the live one.

The new generation is filled by the very code the live worker runs (`apply_in_memory`,
`write_back`), reading every partition from offset 0 outside the consumer group. It is
switched live only once it has reached the ends of all partitions as measured just before the
switch, so a query sees either the old model or the whole new one. With `switch=False` the
copy stays a scratch generation, for comparing with the live one (tests, `ledger audit
verify`) and then dropping.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.sql import SQL, Identifier

from ledger.broker import Consumer, Record, end_offsets
from ledger.errors import LedgerError
from ledger.logs import get_logger
from projections import generations
from projections.applying import (
    ModelState,
    SeenByPartition,
    apply_in_memory,
    new_events,
    read_batch,
    write_back,
)
from projections.generations import Generation
from projections.model import ReadModel

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

log = get_logger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RebuildResult:
    generation: Generation
    events: int
    records: int
    seconds: float
    replaced: Generation | None


#: Called with each polled batch of records, before it is applied (`ledger audit verify` reads
#: the log for its own check in the same pass).
RecordsSeen = Callable[[Sequence[Record]], None]


def rebuild(
    database_url: str,
    bootstrap: str,
    topic: str,
    model: ReadModel,
    *,
    switch: bool,
    progress: Progress | None = None,
    max_batch: int = 5000,
) -> RebuildResult:
    """Build a new generation of `model` from the whole topic; make it live if `switch`."""
    return rebuild_models(
        database_url,
        bootstrap,
        topic,
        (model,),
        switch=switch,
        progress=progress,
        max_batch=max_batch,
    )[0]


#: Below this many records a rebuild runs in one process: starting another (a fresh
#: interpreter importing the ledger) costs about as long as rebuilding that many alone.
PROCESSES_FROM_RECORDS = 50_000


def processes_for(bootstrap: str, topic: str, requested: int | None) -> int:
    """How many processes a rebuild of `topic` uses: `requested`, or one per core (at most one
    per partition) once the topic is long enough for them to pay."""
    if requested is not None:
        return requested
    ends = end_offsets(bootstrap, topic)
    if sum(ends.values()) < PROCESSES_FROM_RECORDS:
        return 1
    return max(1, min(os.cpu_count() or 1, len(ends)))


def rebuild_models(
    database_url: str,
    bootstrap: str,
    topic: str,
    models: Sequence[ReadModel],
    *,
    switch: bool,
    progress: Progress | None = None,
    max_batch: int = 5000,
    on_records: RecordsSeen | None = None,
    processes: int = 1,
) -> list[RebuildResult]:
    """Build a new generation of each of `models` in one pass over the topic.

    Each batch is read from Kafka and decoded once for all of them, what is new in it worked
    out once, and the rows each model holds kept between batches (`ModelState`: the rebuild
    is the generation's only writer), written every `WRITE_EVERY` records.
    Reading the topic once instead of once per model made `ledger audit verify`, which
    rebuilds every model, about three times faster.

    With `processes` above one, the partitions are shared out among that many processes, as
    the live worker's group shares them: a learner's events are all in one partition, so the
    processes write different rows (and add to shared counters, which commute). `on_records`
    is then fed by a read of the topic in this process, beside them.
    """
    started = time.perf_counter()
    results: list[RebuildResult] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        made = [
            generations.new_generation(conn, model, "building" if switch else "scratch")
            for model in models
        ]
        schemas = [g.schema for g in made]
        try:
            if processes > 1:
                applied, records_read = _fill_in_processes(
                    database_url,
                    bootstrap,
                    topic,
                    models,
                    schemas,
                    processes,
                    max_batch,
                    progress,
                    on_records,
                )
            else:
                consumer = Consumer(
                    bootstrap, None, "ledger-rebuild", max_batch, encoded_headers=True
                )
                try:
                    partitions = consumer.assign_all(topic)
                    applied, records_read = _fill(
                        conn, consumer, partitions, models, schemas, progress, on_records
                    )
                finally:
                    consumer.close()
        except BaseException:
            for generation in made:
                generations.drop(conn, generation)
            raise
        seconds = time.perf_counter() - started
        for model, generation, events in zip(models, made, applied, strict=True):
            replaced = generations.switch(conn, model, generation) if switch else None
            log.info(
                "projections.rebuilt",
                projection=model.name,
                schema=generation.schema,
                events=events,
                records=records_read,
                seconds=round(seconds, 2),
                switched=switch,
                processes=processes,
            )
            results.append(RebuildResult(generation, events, records_read, seconds, replaced))
    return results


#: Records a rebuild applies in memory between two writes. The live worker writes every batch
#: (its readers wait for it); a rebuild is its generation's only writer and nobody reads it
#: until the switch, so it writes each learner's rows once per window instead of once per
#: batch that meets them: with traffic interleaved over months a learner is met in most
#: batches. Memory stays bounded by `ModelState.LIMIT`: a full state is written out at once.
WRITE_EVERY = 200_000


def _fill(
    conn: psycopg.Connection[Any],
    consumer: Consumer,
    partitions: list[tuple[str, int]],
    models: Sequence[ReadModel],
    schemas: Sequence[str],
    progress: Progress | None,
    on_records: RecordsSeen | None,
) -> tuple[list[int], int]:
    """Apply `partitions` from their beginning to their end (measured again once reached) to
    each model's tables in `schemas`; the events each applied, and the records read.

    Every generation here is new and fed the same records, so one account of what has been
    seen serves them all (`positions.Seen`, kept in memory and written with the rows)."""
    states = [ModelState(model) for model in models]
    applied = [0] * len(models)
    records_read = 0
    done: dict[tuple[str, int], int] = dict.fromkeys(partitions, 0)
    seen: SeenByPartition = {}
    malformed: dict[tuple[str, int, int], str] = {}
    unwritten = 0
    ends = consumer.end_offsets(partitions)

    def write() -> None:
        nonlocal unwritten
        written = {p: o for p, o in done.items() if o}
        with conn.transaction(), conn.cursor() as cur:
            for state, schema in zip(states, schemas, strict=True):
                write_back(cur, schema, state, written, seen, malformed)
        malformed.clear()
        unwritten = 0
        for n, model in enumerate(models):
            if states[n].full:
                states[n] = ModelState(model)

    while True:
        if all(done[p] >= ends[p] for p in partitions):
            ends = consumer.end_offsets(partitions)  # caught up with what, now?
            if all(done[p] >= ends[p] for p in partitions):
                break
        records = consumer.poll(timeout_ms=500)
        if not records:
            continue
        if on_records is not None:
            on_records(records)
        batch = read_batch(records)
        new = new_events(batch, seen)
        with conn.cursor() as cur:
            for n, (model, schema) in enumerate(zip(models, schemas, strict=True)):
                applied[n] += len(apply_in_memory(cur, model, schema, new, states[n]))
        malformed.update(batch.malformed)
        records_read += len(records)
        unwritten += len(records)
        done.update(batch.next_offsets)
        if unwritten >= WRITE_EVERY or any(state.full for state in states):
            write()
        if progress is not None:
            progress(sum(done.values()), sum(ends.values()))
    write()
    return applied, records_read


def _fill_in_processes(
    database_url: str,
    bootstrap: str,
    topic: str,
    models: Sequence[ReadModel],
    schemas: Sequence[str],
    processes: int,
    max_batch: int,
    progress: Progress | None,
    on_records: RecordsSeen | None,
) -> tuple[list[int], int]:
    """`_fill` with the partitions shared out among `processes` child processes; meanwhile
    this one reads the topic for `on_records` and reports the children's progress."""
    ends = end_offsets(bootstrap, topic)
    shares = [sorted(ends)[n::processes] for n in range(processes)]
    shares = [share for share in shares if share]
    context = multiprocessing.get_context("spawn")
    reports: Queue[tuple[str, int, Any]] = context.Queue()
    names = [model.name for model in models]
    children = [
        context.Process(
            target=_child,
            args=(
                database_url,
                bootstrap,
                topic,
                names,
                list(schemas),
                share,
                max_batch,
                n,
                reports,
            ),
            name=f"ledger-rebuild-{n}",
            daemon=True,
        )
        for n, share in enumerate(shares)
    ]
    for child in children:
        child.start()
    try:
        if on_records is not None:
            read_topic(bootstrap, topic, on_records)
        return _gather(children, reports, sum(ends.values()), len(models), progress)
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join(30)


def _gather(
    children: Sequence[BaseProcess],
    reports: Queue[tuple[str, int, Any]],
    total: int,
    models: int,
    progress: Progress | None,
) -> tuple[list[int], int]:
    """Wait for every child's result; what each model applied, and the records read."""
    done_by_child: dict[int, int] = {}
    finished: dict[int, tuple[list[int], int]] = {}
    while len(finished) < len(children):
        try:
            kind, index, value = reports.get(timeout=1.0)
        except queue.Empty:
            for n, child in enumerate(children):
                if n not in finished and child.exitcode not in (None, 0):
                    message = f"rebuild process {n} ended with status {child.exitcode}"
                    raise RebuildError(message) from None
            continue
        if kind == "failed":
            raise RebuildError(f"rebuild process {index} failed: {value}")
        if kind == "progress":
            done_by_child[index] = value
            if progress is not None:
                progress(sum(done_by_child.values()), total)
        elif kind == "done":
            finished[index] = value
    applied = [sum(f[0][m] for f in finished.values()) for m in range(models)]
    return applied, sum(f[1] for f in finished.values())


def _child(
    database_url: str,
    bootstrap: str,
    topic: str,
    names: list[str],
    schemas: list[str],
    partitions: list[int],
    max_batch: int,
    index: int,
    reports: Queue[tuple[str, int, Any]],
) -> None:
    """One rebuild process: its share of the partitions, into the generations made for it."""
    from projections.catalog import by_name  # noqa: PLC0415 - the catalog imports every model

    try:
        models = [by_name(name) for name in names]
        last = 0.0

        def report(done: int, _total: int) -> None:
            nonlocal last
            if time.monotonic() - last >= 0.5:
                last = time.monotonic()
                reports.put(("progress", index, done))

        consumer = Consumer(
            bootstrap, None, f"ledger-rebuild-{index}", max_batch, encoded_headers=True
        )
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                own = consumer.assign_all(topic, partitions)
                result = _fill(conn, consumer, own, models, schemas, report, None)
        finally:
            consumer.close()
        reports.put(("progress", index, result[1]))
        reports.put(("done", index, result))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
        reports.put(("failed", index, f"{type(error).__name__}: {error}"))


def read_topic(
    bootstrap: str, topic: str, on_records: RecordsSeen, progress: Progress | None = None
) -> None:
    """Every record of `topic` up to its end now, handed to `on_records` batch by batch
    (beside a rebuild in processes, and for `ledger audit verify` without the read models)."""
    consumer = Consumer(bootstrap, None, "ledger-reader", 5000, encoded_headers=True)
    try:
        partitions = consumer.assign_all(topic)
        ends = consumer.end_offsets(partitions)
        done: dict[tuple[str, int], int] = dict.fromkeys(partitions, 0)
        while any(done[p] < ends[p] for p in partitions):
            records = consumer.poll(timeout_ms=500)
            for record in records:
                done[(record.topic, record.partition)] = record.offset + 1
            on_records(records)
            if progress is not None:
                progress(sum(done.values()), sum(ends.values()))
    finally:
        consumer.close()


class RebuildError(LedgerError):
    """A rebuild process failed; the generations it was filling are dropped."""


def table_dump(
    conn: psycopg.Connection[Any],
    schema: str,
    model: ReadModel,
    learner_id: str | None = None,
    *,
    without_store_order: bool = False,
) -> dict[str, list[str]]:
    """Every row of every table of the model in `schema`, in key order, as text: for comparing
    two generations byte for byte. With `learner_id`, only that learner's rows of the tables
    kept per learner (tables of other scopes, and counters, whole). `without_store_order`
    leaves out the columns that follow the event store's order (`Table.store_order`): for
    comparing two ledgers told the same story."""
    dump: dict[str, list[str]] = {}
    with conn.cursor() as cur:
        for table in model.tables:
            narrow = learner_id is not None and table.scope == "learner_id"
            kept = [
                c
                for c in table.column_names
                if not (without_store_order and c in table.store_order)
            ]
            row = (
                SQL("ROW({})").format(SQL(", ").join(SQL("t.") + Identifier(c) for c in kept))
                if len(kept) < len(table.column_names)
                else SQL("t")
            )
            cur.execute(
                SQL("SELECT {row}::text FROM {s}.{t} t {where} ORDER BY {key}").format(
                    row=row,
                    s=Identifier(schema),
                    t=Identifier(table.name),
                    where=SQL("WHERE learner_id = %s" if narrow else ""),
                    key=SQL(", ").join(map(Identifier, table.key)),
                ),
                (learner_id,) if narrow else (),
            )
            dump[table.name] = [r[0] for r in cur.fetchall()]
        for counters in model.counters:
            cur.execute(
                SQL("SELECT t::text FROM {s}.{t} t ORDER BY {key}").format(
                    s=Identifier(schema),
                    t=Identifier(counters.name),
                    key=SQL(", ").join(Identifier(c) for c, _ in counters.key),
                )
            )
            dump[counters.name] = [r[0] for r in cur.fetchall()]
    return dump
