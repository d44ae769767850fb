"""Where a read model stands in each partition: the offset to resume from, and which events it
has applied, so that a republished copy of one changes nothing.

Both live in the model's own schema, one row per partition, written in the transaction that
writes the model's rows.

Why not one stored version per aggregate, the usual dedupe: writing those rows was more than a
third of all the rows a batch wrote when it meets most learners once (as months of production
traffic do), and cost about a tenth of the worker's time. The relay gives something cheaper to
keep. Each record carries its event's position in the notification log (`ledger_position`) and
how far the relay had published when it sent it (`ledger_relayed_through`: every event at or
below that position was on the topic, acknowledged, before this record was sent). So, in one
partition, once a record says "relayed through R", every event at or below R that belongs to
the partition is behind us: seen, applied or skipped. Above R only the events of the relay's
pages since then can be pending, and those are few (one page of the relay, shared by all
partitions); the model keeps their positions. An event is new exactly when its position is
above R and not among them. No order is assumed within a relay page: a page whose send failed
halfway may have landed its later records and not its earlier ones, and the relay then sends the
whole page again, as the same positions under the same R.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from psycopg import Cursor
from psycopg.sql import SQL, Composed, Identifier

Cur = Cursor[tuple[Any, ...]]
Partition = tuple[str, int]


@dataclass
class Seen:
    """What a read model has seen of one partition (see the module docstring)."""

    #: The highest `ledger_relayed_through` met: nothing at or below it can be new.
    through: int = 0
    #: Positions above `through` already handled (applied, or of no interest to the model).
    above: set[int] = field(default_factory=set)

    def admit(self, position: int, relayed_through: int) -> bool:
        """Whether the event at `position` is new here; it counts as seen from now on."""
        new = position > self.through and position not in self.above
        if new:
            self.above.add(position)
        if relayed_through > self.through:
            self.through = relayed_through
            self.above = {p for p in self.above if p > relayed_through}
        return new


def ddl(schema: str) -> list[Composed]:
    s = Identifier(schema)
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {s}._offsets ("
            " topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL,"
            " relayed_through bigint NOT NULL DEFAULT 0,"
            " seen_above bigint[] NOT NULL DEFAULT '{{}}',"
            " updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (topic, partition))"
        ).format(s=s),
        # Generations made before positions were kept (they deduped by aggregate version).
        SQL(
            "ALTER TABLE {s}._offsets"
            " ADD COLUMN IF NOT EXISTS relayed_through bigint NOT NULL DEFAULT 0,"
            " ADD COLUMN IF NOT EXISTS seen_above bigint[] NOT NULL DEFAULT '{{}}'"
        ).format(s=s),
    ]


def load_seen(cur: Cur, schema: str) -> dict[Partition, Seen]:
    """Every partition's `Seen`, as the model's last committed batch left it."""
    cur.execute(load_seen_statement(schema))
    return seen_from(cur.fetchall())


def seen_from(rows: Iterable[Sequence[Any]]) -> dict[Partition, Seen]:
    """The `Seen`s in the rows `load_seen_statement` found."""
    return {(t, int(p)): Seen(int(r), set(above)) for t, p, r, above in rows}


def save(
    cur: Cur, schema: str, next_offsets: dict[Partition, int], seen: dict[Partition, Seen]
) -> None:
    """Store where each partition of a batch ends, and what has been seen of it: one statement
    for every partition of the batch, not one per partition. A live batch touches most
    partitions, and in pipeline mode each row of an `executemany` was a statement of its own
    for psycopg and PostgreSQL to handle: with five read models and twelve partitions, about
    a tenth of the projection worker's Python at 1,900 messages/s (`docs/performance.md`)."""
    if not next_offsets:
        return
    rows = []
    for key in sorted(next_offsets):  # one order of row locks for every writer
        state = seen.get(key, Seen())
        rows.append(
            {
                "t": key[0],
                "p": key[1],
                "n": next_offsets[key],
                "r": state.through,
                "a": sorted(state.above),
            }
        )
    # One JSON parameter: psycopg adapts a string at once, where five lists (one with arrays
    # of unequal lengths, which an array parameter cannot hold) cost it more than the rest.
    cur.execute(_save_sql(schema), (orjson.dumps(rows).decode(),))


@lru_cache(maxsize=256)
def load_seen_statement(schema: str) -> bytes:
    """The query `load_seen` runs, for a caller that sends it before reading its answer."""
    return (
        SQL("SELECT topic, partition, relayed_through, seen_above FROM {s}._offsets")
        .format(s=Identifier(schema))
        .as_bytes(None)
    )


@lru_cache(maxsize=256)
def _save_sql(schema: str) -> bytes:
    """Composed once per schema: composing it cost more than running it (`rows._statement`)."""
    return (
        SQL(
            "INSERT INTO {s}._offsets AS o"
            " (topic, partition, next_offset, relayed_through, seen_above)"
            " SELECT t, p, n, r, a FROM json_to_recordset(%s::json)"
            " AS u(t text, p int, n bigint, r bigint, a bigint[])"
            " ON CONFLICT (topic, partition) DO UPDATE"
            " SET next_offset = greatest(o.next_offset, EXCLUDED.next_offset),"
            " relayed_through = EXCLUDED.relayed_through, seen_above = EXCLUDED.seen_above,"
            " updated_at = now()"
        )
        .format(s=Identifier(schema))
        .as_bytes(None)
    )


def load_offsets(cur: Cur, schema: str, topic: str) -> dict[int, int]:
    cur.execute(
        SQL("SELECT partition, next_offset FROM {s}._offsets WHERE topic = %s").format(
            s=Identifier(schema)
        ),
        (topic,),
    )
    return {int(p): int(o) for p, o in cur.fetchall()}
