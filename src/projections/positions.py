"""Where a read model stands: per aggregate (for dedupe) and per partition (for lag).

Both live in the model's own schema and are written in the transaction that writes its rows.
The per-aggregate version is what makes a republished event harmless: an event whose version is
not above the stored one has been applied already. The per-partition offsets are where the
worker resumes and what `ledger projections status` compares with the topic's end; a relay
restart republishes under new offsets, which the versions make harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import Cursor
from psycopg.sql import SQL, Composed, Identifier

Cur = Cursor[tuple[Any, ...]]


def ddl(schema: str) -> list[Composed]:
    s = Identifier(schema)
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {s}._versions ("
            " aggregate_id uuid PRIMARY KEY, version bigint NOT NULL)"
        ).format(s=s),
        SQL(
            "CREATE TABLE IF NOT EXISTS {s}._offsets ("
            " topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (topic, partition))"
        ).format(s=s),
    ]


def load_versions(cur: Cur, schema: str, aggregate_ids: Iterable[str]) -> dict[str, int]:
    """The version applied last, per aggregate (ids as text, as events carry them)."""
    cur.execute(
        SQL(
            "SELECT aggregate_id::text, version FROM {s}._versions"
            " WHERE aggregate_id = ANY(%b::text[]::uuid[])"
        ).format(s=Identifier(schema)),
        (list(set(aggregate_ids)),),
    )
    return {a: int(v) for a, v in cur.fetchall()}


def save_versions(cur: Cur, schema: str, versions: dict[str, int]) -> None:
    if not versions:
        return
    cur.execute(
        SQL(
            "INSERT INTO {s}._versions (aggregate_id, version)"
            " SELECT * FROM unnest(%b::text[]::uuid[], %b::bigint[])"
            " ON CONFLICT (aggregate_id) DO UPDATE SET version = EXCLUDED.version"
        ).format(s=Identifier(schema)),
        (list(versions), list(versions.values())),
    )


def save_offsets(cur: Cur, schema: str, offsets: Sequence[tuple[str, int, int]]) -> None:
    cur.executemany(
        SQL(
            "INSERT INTO {s}._offsets AS o (topic, partition, next_offset) VALUES (%s, %s, %s)"
            " ON CONFLICT (topic, partition) DO UPDATE"
            " SET next_offset = greatest(o.next_offset, EXCLUDED.next_offset), updated_at = now()"
        ).format(s=Identifier(schema)),
        list(offsets),
    )


def load_offsets(cur: Cur, schema: str, topic: str) -> dict[int, int]:
    cur.execute(
        SQL("SELECT partition, next_offset FROM {s}._offsets WHERE topic = %s").format(
            s=Identifier(schema)
        ),
        (topic,),
    )
    return {int(p): int(o) for p, o in cur.fetchall()}
