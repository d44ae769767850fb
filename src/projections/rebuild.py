"""Rebuilding a read model from the start of `ledger.events`, beside the live one.

The new generation is filled by the very code the live worker runs (`apply_batch`), reading
every partition from offset 0 outside the consumer group. It is switched live only once it
has reached the ends of all partitions as measured just before the switch, so a query sees
either the old model or the whole new one. With `switch=False` the copy stays a scratch
generation, for comparing with the live one (tests, `ledger audit verify`) and then dropping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier

from ledger.broker import Consumer
from ledger.logs import get_logger
from projections import generations
from projections.applying import apply_batch, read_batch
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
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        generation = generations.new_generation(conn, model, "building" if switch else "scratch")
        consumer = Consumer(
            bootstrap, None, f"ledger-rebuild-{model.name}", max_batch, encoded_headers=True
        )
        applied = records_read = 0
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
                batch = read_batch(records)
                with conn.transaction(), conn.cursor() as cur:
                    applied += len(apply_batch(cur, model, generation.schema, batch))
                records_read += len(records)
                done.update(batch.next_offsets)
                if progress is not None:
                    progress(sum(done.values()), sum(ends.values()))
        except BaseException:
            generations.drop(conn, generation)
            raise
        finally:
            consumer.close()
        replaced = generations.switch(conn, model, generation) if switch else None
    seconds = time.perf_counter() - started
    log.info(
        "projections.rebuilt",
        projection=model.name,
        schema=generation.schema,
        events=applied,
        records=records_read,
        seconds=round(seconds, 2),
        switched=switch,
    )
    return RebuildResult(generation, applied, records_read, seconds, replaced)


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
