"""Events a read model could not apply, kept with the reason, so its partition goes on.

Every event on `ledger.events` was written by the relay from a stored event the intake had
checked, so a read model failing on one is a bug, or a record someone else wrote onto the topic.
Either way, stopping the partition would stop every later event of every learner in it. So the
worker applies a batch that fails again event by event, each in a savepoint, and an event that
fails alone is skipped by that read model only: the failure is written here, in the model's own
schema and in the transaction that moves its position past the event. `ledger projections
status` and `/metrics` count them; a rebuild, with the bug fixed, applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from psycopg import Cursor
from psycopg.sql import SQL, Composed, Identifier

Cur = Cursor[tuple[Any, ...]]


@dataclass(frozen=True)
class Skipped:
    """One event a read model skipped, and why."""

    topic: str
    partition: int
    offset: int
    event_id: str | None
    event_type: str | None
    error: str


def ddl(schema: str) -> list[Composed]:
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {s}._skipped ("
            " topic text NOT NULL, partition int NOT NULL, kafka_offset bigint NOT NULL,"
            " event_id text, event_type text, error text NOT NULL,"
            " skipped_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (topic, partition, kafka_offset))"
        ).format(s=Identifier(schema))
    ]


def _text(value: str | None) -> str | None:
    """As PostgreSQL can store it: the event may be skipped precisely for holding a NUL."""
    if value is None:
        return None
    return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def record(cur: Cur, schema: str, skipped: Skipped) -> None:
    """Keep one skipped event (once: a republished copy of it changes nothing)."""
    cur.execute(
        _insert_sql(schema),
        (
            skipped.topic,
            skipped.partition,
            skipped.offset,
            _text(skipped.event_id),
            _text(skipped.event_type),
            (_text(skipped.error) or "")[:2000],
        ),
    )


def count(cur: Cur, schema: str) -> int:
    cur.execute(SQL("SELECT count(*) FROM {s}._skipped").format(s=Identifier(schema)))
    row = cur.fetchone()
    return int(row[0]) if row else 0


def listed(cur: Cur, schema: str, limit: int = 100) -> list[Skipped]:
    cur.execute(
        SQL(
            "SELECT topic, partition, kafka_offset, event_id, event_type, error"
            " FROM {s}._skipped ORDER BY skipped_at, topic, partition, kafka_offset LIMIT %s"
        ).format(s=Identifier(schema)),
        (limit,),
    )
    return [Skipped(str(t), int(p), int(o), e, y, str(r)) for t, p, o, e, y, r in cur.fetchall()]


@lru_cache(maxsize=256)
def _insert_sql(schema: str) -> bytes:
    return (
        SQL(
            "INSERT INTO {s}._skipped (topic, partition, kafka_offset, event_id, event_type,"
            " error) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
        )
        .format(s=Identifier(schema))
        .as_bytes(None)
    )
