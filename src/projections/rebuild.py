"""Rebuilding a read model from the start of `ledger.events`, beside the live one.

The new generation is filled by the very code the live worker runs (`apply_batch`), reading
every partition from offset 0 outside the consumer group. It is switched live only once it
has reached the ends of all partitions as measured just before the switch, so a query sees
either the old model or the whole new one. With `switch=False` the copy stays a scratch
generation, for comparing with the live one (tests, `ledger audit verify`) and then dropping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier

from ledger.broker import Consumer, Record
from ledger.logs import get_logger
from projections import generations
from projections.applying import Admissions, ModelState, apply_batch, read_batch
from projections.generations import Generation
from projections.model import ReadModel

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
) -> list[RebuildResult]:
    """Build a new generation of each of `models` in one pass over the topic.

    Each batch is read from Kafka and decoded once for all of them, what is new in it worked
    out once (`Admissions`), and the rows each model has written kept between batches
    (`ModelState`: the rebuild is the generation's only writer), in one transaction per batch.
    Reading the topic once instead of once per model made `ledger audit verify`, which
    rebuilds every model, about three times faster.
    """
    started = time.perf_counter()
    results: list[RebuildResult] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        made = [
            generations.new_generation(conn, model, "building" if switch else "scratch")
            for model in models
        ]
        names = "-".join(model.name for model in models)
        consumer = Consumer(
            bootstrap, None, f"ledger-rebuild-{names}"[:200], max_batch, encoded_headers=True
        )
        states = [ModelState(model) for model in models]
        applied = [0] * len(models)
        records_read = 0
        try:
            partitions = consumer.assign_all(topic)
            done: dict[tuple[str, int], int] = dict.fromkeys(partitions, 0)
            ends = consumer.end_offsets(partitions)
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
                admissions = Admissions(batch)
                with conn.transaction(), conn.cursor() as cur:
                    for n, (model, generation) in enumerate(zip(models, made, strict=True)):
                        if states[n].full:
                            states[n] = ModelState(model)
                        applied[n] += len(
                            apply_batch(cur, model, generation.schema, batch, states[n], admissions)
                        )
                records_read += len(records)
                done.update(batch.next_offsets)
                if progress is not None:
                    progress(sum(done.values()), sum(ends.values()))
        except BaseException:
            for generation in made:
                generations.drop(conn, generation)
            raise
        finally:
            consumer.close()
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
            )
            results.append(RebuildResult(generation, events, records_read, seconds, replaced))
    return results


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
