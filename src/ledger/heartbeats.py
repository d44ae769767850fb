"""Each running worker says, every few seconds, how it is doing: the table `/metrics` reads.

A worker that stalls or rides out an outage is, seen from outside, a process that is alive and
says nothing. So every worker of every process writes one row about itself
(`ledger_worker_heartbeats`, keyed by host, process and worker): when it last made progress,
the lag it sees, how often it rejoined its group after a stall, failed, or met an outage, and
its state now. The API reads the rows at scrape time, as it reads every other figure from
where the workers commit it, so any API process shows every worker.

Writing never stops a worker: a heartbeat that cannot be written (PostgreSQL is away, which
the worker is already riding out) is dropped, and the next one tries again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ledger.logs import get_logger

log = get_logger(__name__)

TABLE = "ledger_worker_heartbeats"

DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    instance text PRIMARY KEY,
    worker text NOT NULL,
    host text NOT NULL,
    pid int NOT NULL,
    state text NOT NULL,
    started_at timestamptz NOT NULL,
    beat_at timestamptz NOT NULL,
    last_progress_at timestamptz NOT NULL,
    lag bigint,
    rejoins int NOT NULL DEFAULT 0,
    failures int NOT NULL DEFAULT 0,
    outages int NOT NULL DEFAULT 0
)
"""

_UPSERT = f"""
INSERT INTO {TABLE} AS h (instance, worker, host, pid, state, started_at, beat_at,
    last_progress_at, lag, rejoins, failures, outages)
VALUES (%s, %s, %s, %s, %s, to_timestamp(%s), now(), to_timestamp(%s), %s, %s, %s, %s)
ON CONFLICT (instance) DO UPDATE SET state = EXCLUDED.state, started_at = EXCLUDED.started_at,
    beat_at = now(), last_progress_at = EXCLUDED.last_progress_at, lag = EXCLUDED.lag,
    rejoins = EXCLUDED.rejoins, failures = EXCLUDED.failures, outages = EXCLUDED.outages
"""  # noqa: S608 - the table name is a constant of this module

#: Rows of workers not heard of for this long are left out of `/metrics` and deleted.
FORGET_AFTER = "1 day"


@dataclass(frozen=True)
class Progress:
    """What a worker reports of its own progress (see `ledger.liveness`)."""

    #: Wall-clock seconds since 1970 at which it last made progress or had nothing to do.
    last_progress: float
    #: Records (or events) it sees waiting; None when it cannot tell.
    lag: int | None = None
    #: Times it left its consumer group to join again after a stall.
    rejoins: int = 0


@dataclass(frozen=True)
class Heartbeat:
    """One row of the table, as `/metrics` reads it."""

    instance: str
    worker: str
    host: str
    pid: int
    state: str
    started_at: datetime
    beat_at: datetime
    last_progress_at: datetime
    lag: int | None
    rejoins: int
    failures: int
    outages: int


def instance_name(worker: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{worker}"


class HeartbeatWriter:
    """Writes heartbeats for the workers of one process through one connection of its own."""

    def __init__(
        self, connect: Callable[[], psycopg.Connection[Any]], every_s: float = 5.0
    ) -> None:
        self._connect = connect
        self.every_s = every_s
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, str]] = {}

    def beat(
        self,
        worker: str,
        state: str,
        started: float,
        progress: Progress,
        failures: int,
        outages: int,
        *,
        force: bool = False,
    ) -> None:
        """Write the worker's row if `every_s` has passed or its state changed."""
        instance = instance_name(worker)
        now = time.monotonic()
        last = self._last.get(instance)
        if not force and last is not None and now - last[0] < self.every_s and last[1] == state:
            return
        self._last[instance] = (now, state)
        row = (
            instance,
            worker,
            socket.gethostname(),
            os.getpid(),
            state,
            started,
            progress.last_progress,
            progress.lag,
            progress.rejoins,
            failures,
            outages,
        )
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                self._conn.execute(_UPSERT, row)
            except psycopg.Error as error:
                log.debug("heartbeat.not_written", worker=worker, error=str(error)[:200])
                self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._close()


def create_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute(DDL)


def read(conn: psycopg.Connection[Any]) -> list[Heartbeat]:
    """The heartbeats of workers heard of recently; older rows are deleted on the way."""
    conn.execute(
        f"DELETE FROM {TABLE} WHERE beat_at < now() - interval '{FORGET_AFTER}'"  # noqa: S608
    )
    rows = conn.execute(
        f"SELECT instance, worker, host, pid, state, started_at, beat_at, last_progress_at,"  # noqa: S608
        f" lag, rejoins, failures, outages FROM {TABLE} ORDER BY instance"
    ).fetchall()
    return [Heartbeat(*row) for row in rows]
