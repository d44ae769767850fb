"""Where each projection stands: per aggregate (for dedupe) and per partition (for lag).

Both are written in the transaction that writes the view rows. The per-aggregate version is what
makes a republished event harmless: an event whose version is not above the stored one has been
applied already. The per-partition offsets are for `ledger projections status`, not for
correctness: a relay restart republishes under new offsets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from psycopg import Cursor

DDL = """
CREATE TABLE IF NOT EXISTS projection_versions (
    projection text NOT NULL,
    aggregate_id uuid NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (projection, aggregate_id)
);
CREATE TABLE IF NOT EXISTS projection_offsets (
    projection text NOT NULL,
    topic text NOT NULL,
    partition int NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);
"""


def load_versions(
    cur: Cursor[tuple[object, ...]], projection: str, aggregate_ids: Iterable[UUID]
) -> dict[UUID, int]:
    ids = list(set(aggregate_ids))
    cur.execute(
        "SELECT aggregate_id, version FROM projection_versions "
        "WHERE projection = %s AND aggregate_id = ANY(%s)",
        (projection, ids),
    )
    return {UUID(str(a)): int(str(v)) for a, v in cur.fetchall()}


def save_versions(
    cur: Cursor[tuple[object, ...]], projection: str, versions: dict[UUID, int]
) -> None:
    cur.executemany(
        "INSERT INTO projection_versions (projection, aggregate_id, version) VALUES (%s, %s, %s) "
        "ON CONFLICT (projection, aggregate_id) DO UPDATE SET version = EXCLUDED.version",
        [(projection, a, v) for a, v in versions.items()],
    )


def save_offsets(
    cur: Cursor[tuple[object, ...]], projection: str, offsets: Sequence[tuple[str, int, int]]
) -> None:
    cur.executemany(
        "INSERT INTO projection_offsets (projection, topic, partition, next_offset) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (projection, topic, partition) DO UPDATE "
        "SET next_offset = greatest(projection_offsets.next_offset, EXCLUDED.next_offset),"
        " updated_at = now()",
        [(projection, t, p, o) for t, p, o in offsets],
    )


def load_offsets(cur: Cursor[tuple[object, ...]], projection: str, topic: str) -> dict[int, int]:
    cur.execute(
        "SELECT partition, next_offset FROM projection_offsets "
        "WHERE projection = %s AND topic = %s",
        (projection, topic),
    )
    return {int(str(p)): int(str(o)) for p, o in cur.fetchall()}
