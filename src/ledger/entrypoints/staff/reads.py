"""The record of staff reads: who read which learner's data, through what, and when.

Written before the data is sent (in the same connection, committed on its own), so a read whose
answer reached anyone is always on record: if the record cannot be written, the read fails too.
Every request for a learner's data that a credential opened is recorded, even one that then
finds nothing (an id the ledger never saw) or fails on another of its values: an auditor asking
"who looked for this learner" wants those too. A request refused at the door (no credential,
the wrong role, an id that is not an id) read nothing and is not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection

DDL = """
CREATE TABLE IF NOT EXISTS ledger_staff_reads (
    read_id bigserial PRIMARY KEY,
    read_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    learner_id text NOT NULL,
    reader text NOT NULL,
    token_id text,
    via text NOT NULL,
    what text NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_staff_reads_by_learner
    ON ledger_staff_reads (learner_id, read_at);
"""


@dataclass(frozen=True)
class Reader:
    """Who is reading: a token's name and id (API and console), or `cli:<user>` (the CLI)."""

    name: str
    token_id: str | None
    via: str  # "api", "console" or "cli"


@dataclass(frozen=True)
class StaffRead:
    """One recorded read."""

    read_id: int
    read_at: datetime
    learner_id: str
    reader: str
    token_id: str | None
    via: str
    what: str


def create_table(conn: Connection[Any]) -> None:
    conn.execute(DDL)


def record(conn: Connection[Any], reader: Reader, learner_id: str, what: str) -> None:
    """Put on record that `reader` is reading `learner_id`'s data through `what` (a route or a
    page, e.g. `GET /v1/learners/{learner_id}/payments`, `console: learner page`)."""
    conn.execute(
        "INSERT INTO ledger_staff_reads (learner_id, reader, token_id, via, what) "
        "VALUES (%s, %s, %s, %s, %s)",
        (learner_id, reader.name, reader.token_id, reader.via, what),
    )


def reads_of(conn: Connection[Any], learner_id: str, limit: int = 500) -> list[StaffRead]:
    """Who read this learner's data, newest first."""
    rows = conn.execute(
        "SELECT read_id, read_at, learner_id, reader, token_id, via, what "
        "FROM ledger_staff_reads WHERE learner_id = %s "
        "ORDER BY read_at DESC, read_id DESC LIMIT %s",
        (learner_id, limit),
    ).fetchall()
    return [StaffRead(*row) for row in rows]
