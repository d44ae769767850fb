"""Rebuilds of read models asked for through the console or the API, and how far each has come.

`ledger projections rebuild` shows its own progress bar; a rebuild started from a web page runs
in the API process, in a thread of its own, and writes its progress here (at most once a
second), so any API process can show it and a page refreshed later still finds it. One rebuild
of a model at a time: a second is refused while the first runs. A rebuild whose process died
stops reporting; after `STALE_S` without a word it is shown as interrupted and a new one may
start.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import Connection, errors

from ledger.logs import get_logger
from ledger.settings import Services, Settings
from projections.catalog import by_name
from projections.rebuild import rebuild

log = get_logger(__name__)

#: A running rebuild that has not reported for this long is taken to be dead.
STALE_S = 60

DDL = """
CREATE TABLE IF NOT EXISTS ledger_rebuilds (
    rebuild_id bigserial PRIMARY KEY,
    read_model text NOT NULL,
    requested_by text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    done bigint NOT NULL DEFAULT 0,
    total bigint NOT NULL DEFAULT 0,
    finished_at timestamptz,
    outcome text
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_rebuilds_one_running
    ON ledger_rebuilds (read_model) WHERE finished_at IS NULL;
"""


class RebuildRunningError(Exception):
    """Raised when a rebuild is asked for a read model that is being rebuilt already."""


@dataclass(frozen=True)
class RebuildState:
    rebuild_id: int
    read_model: str
    requested_by: str
    started_at: datetime
    updated_at: datetime
    done: int
    total: int
    finished_at: datetime | None
    outcome: str | None

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def percent(self) -> float:
        if self.finished_at is not None and self.outcome and self.outcome.startswith("done"):
            return 100.0
        return 100.0 * self.done / self.total if self.total else 0.0


def create_table(conn: Connection[Any]) -> None:
    conn.execute(DDL)


def _interrupt_stale(conn: Connection[Any]) -> None:
    conn.execute(
        "UPDATE ledger_rebuilds SET finished_at = now(), "
        "outcome = 'interrupted: its process stopped reporting' "
        "WHERE finished_at IS NULL AND updated_at < now() - make_interval(secs => %s)",
        (STALE_S,),
    )


def recent(conn: Connection[Any], limit: int = 20) -> list[RebuildState]:
    """The newest rebuilds, running ones first."""
    _interrupt_stale(conn)
    rows = conn.execute(
        "SELECT rebuild_id, read_model, requested_by, started_at, updated_at, done, total, "
        "finished_at, outcome FROM ledger_rebuilds "
        "ORDER BY finished_at IS NOT NULL, rebuild_id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    return [RebuildState(*row) for row in rows]


def start(settings: Settings, services: Services, conn: Connection[Any], name: str, by: str) -> int:
    """Start rebuilding the read model `name` in a background thread; its rebuild id.

    `KeyError` names the read models there are; `RebuildRunningError` says one is running."""
    model = by_name(name)
    _interrupt_stale(conn)
    try:
        row = conn.execute(
            "INSERT INTO ledger_rebuilds (read_model, requested_by) VALUES (%s, %s) "
            "RETURNING rebuild_id",
            (model.name, by),
        ).fetchone()
    except errors.UniqueViolation:
        raise RebuildRunningError(
            f"{model.name} is being rebuilt already: see its progress, and ask again once done"
        ) from None
    if row is None:  # pragma: no cover - an INSERT ... RETURNING gives its row
        raise RuntimeError("the rebuild's row was not returned")
    rebuild_id = int(row[0])
    threading.Thread(
        target=_run,
        args=(settings, services, name, rebuild_id),
        name=f"rebuild-{model.name}",
        daemon=True,
    ).start()
    return rebuild_id


def _run(settings: Settings, services: Services, name: str, rebuild_id: int) -> None:
    model = by_name(name)
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        last = 0.0

        def report(done: int, total: int) -> None:
            nonlocal last
            if time.monotonic() - last >= 1.0:
                last = time.monotonic()
                conn.execute(
                    "UPDATE ledger_rebuilds SET done = %s, total = %s, updated_at = now() "
                    "WHERE rebuild_id = %s",
                    (done, total, rebuild_id),
                )

        try:
            result = rebuild(
                services.database_url,
                services.kafka_bootstrap,
                settings.events_topic,
                model,
                switch=True,
                progress=report,
            )
            outcome = (
                f"done: {result.events:,} events from {result.records:,} records in "
                f"{result.seconds:.1f} s; live in {result.generation.schema}"
            )
            done = total = result.records
        except Exception as error:  # a failed rebuild is reported, not raised
            log.exception("rebuild.failed", read_model=name, rebuild_id=rebuild_id)
            outcome = f"failed: {type(error).__name__}: {error}"[:500]
            done = total = -1
        conn.execute(
            "UPDATE ledger_rebuilds SET finished_at = now(), updated_at = now(), outcome = %s, "
            "done = CASE WHEN %s >= 0 THEN %s ELSE done END, "
            "total = CASE WHEN %s >= 0 THEN %s ELSE total END WHERE rebuild_id = %s",
            (outcome, done, done, total, total, rebuild_id),
        )
