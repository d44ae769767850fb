"""How every worker survives Kafka or PostgreSQL going away, and its own failures: say so once,
back off, carry on.

A worker is a `step()` called in a loop. An outage (the broker or the database not answering) is
logged once when it starts (`worker.outage`), waited out with a back-off that doubles up to a
cap, each retry starting with the worker's `recover()`, which re-reads its positions from
PostgreSQL, so nothing is skipped and nothing applied twice; `worker.recovered` is logged once a
step has gone through again, that is when the services really answer. Any other exception is a
bug: it is logged with its traceback (`worker.failed`) and the worker starts over from its
stored positions after the same kind of back-off, so one fault in one place never stops the
other workers of the process, and a fault that goes away (a poisoned cache, a race) costs a
pause, not the process. Each worker's state, failures and progress are written as heartbeats
(`ledger.heartbeats`), which `/metrics` shows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError

from ledger.broker import BrokerUnavailableError
from ledger.heartbeats import HeartbeatWriter, Progress
from ledger.logs import get_logger
from ledger.memory import collection_deferred, tune_garbage_collector

#: Errors that mean "a service is away for now", not "this input is bad" or "this code is wrong".
OUTAGES: tuple[type[BaseException], ...] = (
    BrokerUnavailableError,
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)

#: The longest wait between two attempts, during an outage or after failures.
MAX_BACKOFF_S = 5.0
#: The longest wait after repeated failures (a bug that does not go away).
MAX_FAILURE_BACKOFF_S = 30.0

__all__ = [
    "MAX_BACKOFF_S",
    "OUTAGES",
    "Worker",
    "collection_deferred",
    "run_until_stopped",
    "run_worker",
    "tune_garbage_collector",
]

log = get_logger(__name__)


class Worker(Protocol):
    """A long-running loop body: intake, relay or projections."""

    name: str

    def step(self) -> bool:
        """Do one unit of work; return False when there was nothing to do."""

    def recover(self) -> None:
        """Resynchronise with PostgreSQL after an outage (re-read positions, reconnect)."""

    def progress(self) -> Progress:
        """When it last made progress, and what it sees waiting (for heartbeats)."""

    def close(self) -> None:
        """Release connections."""


class _Backoff:
    """Waits that double from `first_s` up to `cap_s`, reset by success."""

    def __init__(self, first_s: float, cap_s: float) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self.current = 0.0

    def next(self) -> float:
        self.current = min(self.cap_s, max(self.first_s, self.current * 2))
        return self.current

    def reset(self) -> None:
        self.current = 0.0


def idle(worker: Worker, stop: threading.Event, default_s: float) -> None:
    """After a step that found nothing: the worker's own wait if it has one (the relay waits
    for the event store's notification), else its `idle_wait_s` (a consumer's poll has
    already waited for records), else `default_s`."""
    wait_s = getattr(worker, "idle_wait_s", default_s)
    own = getattr(worker, "idle", None)
    if own is not None and not stop.is_set():
        own(wait_s)
    else:
        stop.wait(wait_s)


def run_worker(  # noqa: PLR0915 - one loop whose states are easier read together
    worker: Worker,
    stop: threading.Event,
    idle_wait_s: float = 0.05,
    max_backoff_s: float = MAX_BACKOFF_S,
    heartbeats: HeartbeatWriter | None = None,
) -> None:
    """Run `worker.step()` until `stop` is set, riding out outages and failures."""
    outage = _Backoff(0.2, max_backoff_s)
    failure = _Backoff(1.0, MAX_FAILURE_BACKOFF_S)
    outage_started: float | None = None
    failing = False
    needs_recover = False
    failures = outages = 0
    started = time.time()
    state = "running"

    def beat(force: bool = False) -> None:
        if heartbeats is not None:
            heartbeats.beat(
                worker.name, state, started, worker.progress(), failures, outages, force=force
            )

    log.info("worker.started", worker=worker.name)
    try:
        while not stop.is_set():
            try:
                if needs_recover:
                    worker.recover()
                    needs_recover = False
                did_work = worker.step()
                if outage_started is not None:
                    log.info(
                        "worker.recovered",
                        worker=worker.name,
                        outage_s=round(time.monotonic() - outage_started, 1),
                    )
                    outage_started = None
                    outage.reset()
                if failing:
                    log.info("worker.resumed", worker=worker.name, failures=failures)
                    failing = False
                    failure.reset()
                state = "running"
                beat()
                if not did_work:
                    idle(worker, stop, idle_wait_s)
            except OUTAGES as error:
                needs_recover = True
                wait = outage.next()
                if outage_started is None:
                    outage_started = time.monotonic()
                    outages += 1
                    state = "outage"
                    log.warning(
                        "worker.outage",
                        worker=worker.name,
                        error=str(error)[:500],
                        error_type=type(error).__name__,
                        retry_in_s=wait,
                    )
                    beat(force=True)
                else:
                    log.debug("worker.still_out", worker=worker.name, retry_in_s=wait)
                stop.wait(wait)
            except Exception:
                needs_recover = True
                failures += 1
                failing = True
                state = "failed"
                wait = failure.next()
                log.exception(
                    "worker.failed", worker=worker.name, failures=failures, retry_in_s=wait
                )
                beat(force=True)
                stop.wait(wait)
    finally:
        state = "stopped"
        try:
            worker.close()
        finally:
            beat(force=True)
            log.info("worker.stopped", worker=worker.name)


def run_until_stopped(
    workers: list[Worker],
    stop: threading.Event,
    on_crash: Callable[[str], None] | None = None,
    heartbeats: HeartbeatWriter | None = None,
) -> list[threading.Thread]:
    """Start each worker in its own thread. A worker only ends when `stop` is set, or on
    something other than an exception (a KeyboardInterrupt, a SystemExit): that stops all."""

    def target(worker: Worker) -> None:
        try:
            run_worker(worker, stop, heartbeats=heartbeats)
        except BaseException:
            log.exception("worker.crashed", worker=worker.name)
            if on_crash is not None:
                on_crash(worker.name)
            stop.set()

    threads = [
        threading.Thread(target=target, args=(w,), name=f"ledger-{w.name}", daemon=True)
        for w in workers
    ]
    for thread in threads:
        thread.start()
    return threads
