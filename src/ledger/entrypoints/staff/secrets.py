"""The key that signs console sessions, shared by every API process through PostgreSQL.

`LEDGER_SESSION_SECRET` names one outright (it must then be the same for every API process).
Without it, the first process to need a key makes one (256 random bits) and stores it here;
every other process reads the same, so a session made by one replica is honoured by all, and by
a restarted one. Whoever can read this table can read the learners' data anyway: the key adds
no exposure beyond the database's own.
"""

from __future__ import annotations

import secrets
from typing import Any

from psycopg import Connection

DDL = """
CREATE TABLE IF NOT EXISTS ledger_staff_secrets (
    name text PRIMARY KEY,
    secret bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


def create_table(conn: Connection[Any]) -> None:
    conn.execute(DDL)


def shared_secret(conn: Connection[Any], name: str) -> bytes:
    """The secret called `name`, made (once, whoever asks first) if there is none yet."""
    conn.execute(
        "INSERT INTO ledger_staff_secrets (name, secret) VALUES (%s, %s) "
        "ON CONFLICT (name) DO NOTHING",
        (name, secrets.token_bytes(32)),
    )
    row = conn.execute(
        "SELECT secret FROM ledger_staff_secrets WHERE name = %s", (name,)
    ).fetchone()
    if row is None:  # pragma: no cover - inserted just above
        raise RuntimeError(f"the secret {name!r} was not stored")
    return bytes(row[0])
