"""How far each xAPI destination has been sent: per partition of `ledger.events`, the next
offset, kept in PostgreSQL and written after the LRS has taken what came before it. A restart
resumes there; what an interrupted batch had sent already, the LRS ignores (same ids)."""

from __future__ import annotations

from typing import Any

from psycopg import Connection

DDL = """
CREATE TABLE IF NOT EXISTS ledger_xapi_positions (
    destination text NOT NULL,
    topic text NOT NULL,
    partition int NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination, topic, partition)
)
"""


def create_table(conn: Connection[Any]) -> None:
    conn.execute(DDL)


def load(conn: Connection[Any], destination: str, topic: str) -> dict[int, int]:
    rows = conn.execute(
        "SELECT partition, next_offset FROM ledger_xapi_positions "
        "WHERE destination = %s AND topic = %s",
        (destination, topic),
    ).fetchall()
    return {int(p): int(o) for p, o in rows}


def save(conn: Connection[Any], destination: str, ends: dict[tuple[str, int], int]) -> None:
    with conn.transaction():
        for (topic, partition), offset in ends.items():
            conn.execute(
                "INSERT INTO ledger_xapi_positions (destination, topic, partition, next_offset) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (destination, topic, partition) DO UPDATE "
                "SET next_offset = GREATEST(ledger_xapi_positions.next_offset, "
                "EXCLUDED.next_offset), updated_at = now()",
                (destination, topic, partition, offset),
            )
