"""How every worker survives Kafka or PostgreSQL going away: log once, back off, carry on.

A worker is a `step()` called in a loop. An outage (the broker or the database not answering)
is logged, waited out with a capped backoff, and followed by the worker's `recover()`, which
re-reads its positions from PostgreSQL, so nothing is skipped and nothing applied twice. Any
other exception is a bug: it is logged with its traceback and the worker stops, loudly.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError

from ledger.broker import BrokerUnavailableError
from ledger.logs import get_logger

#: Errors that mean "a service is away for now", not "this input is bad" or "this code is wrong".
OUTAGES: tuple[type[BaseException], ...] = (
    BrokerUnavailableError,
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)

log = get_logger(__name__)


class Worker(Protocol):
    """A long-running loop body: intake, relay or projections."""

    name: str

    def step(self) -> bool:
        """Do one unit of work; return False when there was nothing to do."""

    def recover(self) -> None:
        """Resynchronise with PostgreSQL after an outage (re-read positions, reconnect)."""

    def close(self) -> None:
        """Release connections."""


#: Allocations between young-generation collections, and young collections per older one.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector run far less often in a ledger process.

    A worker allocates many short-lived objects per message (parsed messages, events, rows)
    while holding a large, long-lived learner cache. With Python's default thresholds
    (700, 10, 10) the collector runs every few messages and regularly walks the whole cache:
    about 15% of the intake's CPU, measured with `ledger bench intake`. Larger thresholds keep
    collecting cyclic garbage, only in bigger, rarer passes.
    """
    gc.collect()
    gc.freeze()  # what exists at start-up (modules, classes) is never garbage
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def collection_deferred() -> Iterator[None]:
    """Keep the cyclic garbage collector out of one batch; it runs, if due, just after.

    A batch holds tens of thousands of young objects at once (records, events, rows), all
    alive until it ends: a collection in the middle walks them all to free none of them, and
    the projection worker spent about a sixth of its time in such collections
    (`ledger bench projections --interleaved`). Afterwards they are gone, and a collection
    walks only what the batch left behind (the rows its worker keeps). Allocation counts go
    on while the collector is off, so no collection is skipped, only moved.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def run_worker(
    worker: Worker, stop: threading.Event, idle_wait_s: float = 0.05, max_backoff_s: float = 5.0
) -> None:
    """Run `worker.step()` until `stop` is set, riding out outages of Kafka and PostgreSQL."""
    backoff = 0.0
    outage_started: float | None = None
    log.info("worker.started", worker=worker.name)
    try:
        while not stop.is_set():
            try:
                if outage_started is not None:
                    worker.recover()
                    log.info(
                        "worker.recovered",
                        worker=worker.name,
                        outage_s=round(time.monotonic() - outage_started, 1),
                    )
                    outage_started = None
                    backoff = 0.0
                if not worker.step():
                    stop.wait(idle_wait_s)
            except OUTAGES as error:
                if outage_started is None:
                    outage_started = time.monotonic()
                backoff = min(max_backoff_s, max(0.2, backoff * 2))
                log.warning(
                    "worker.outage",
                    worker=worker.name,
                    error=str(error)[:500],
                    error_type=type(error).__name__,
                    retry_in_s=backoff,
                )
                stop.wait(backoff)
    except Exception:
        log.exception("worker.crashed", worker=worker.name)
        raise
    finally:
        try:
            worker.close()
        finally:
            log.info("worker.stopped", worker=worker.name)


def run_until_stopped(
    workers: list[Worker], stop: threading.Event, on_crash: Callable[[str], None] | None = None
) -> list[threading.Thread]:
    """Start each worker in its own thread; a crashing worker stops all of them."""

    def target(worker: Worker) -> None:
        try:
            run_worker(worker, stop)
        except Exception:  # noqa: BLE001 - run_worker logged it; stop the others
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
