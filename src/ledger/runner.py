"""`ledger run`: the workers in one process, each in its own thread, stopped cleanly by a signal.

On SIGINT or SIGTERM every worker finishes the batch in hand (its transaction commits or rolls
back whole), closes its connections, and the process exits 0. Separate processes per worker
(`ledger run intake`, ...) scale the same code out; the consumer groups share the partitions.
"""

from __future__ import annotations

import signal
import threading
from enum import StrEnum
from types import FrameType

from commands.intake import IntakeWorker
from ledger.application import Ledger
from ledger.bootstrap import open_ledger, prepare_database, prepare_topics
from ledger.logs import get_logger
from ledger.relay import Relay
from ledger.settings import Settings
from ledger.stack.services import database_url, kafka_bootstrap
from ledger.supervision import Worker, run_until_stopped
from projections.worker import ProjectionWorker

log = get_logger(__name__)


class WorkerName(StrEnum):
    ALL = "all"
    INTAKE = "intake"
    RELAY = "relay"
    PROJECTIONS = "projections"
    API = "api"


class Pipeline:
    """The running workers of one process, and the `Ledger` they share."""

    def __init__(self, settings: Settings, which: WorkerName = WorkerName.ALL) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.crashed: list[str] = []
        prepare_database(settings)
        prepare_topics(settings)
        self.ledger: Ledger = open_ledger(settings)
        bootstrap = kafka_bootstrap(settings)
        workers: list[Worker] = []
        if which in (WorkerName.ALL, WorkerName.INTAKE):
            workers.append(IntakeWorker(self.ledger, settings, bootstrap, settings.intake_batch))
        if which in (WorkerName.ALL, WorkerName.RELAY):
            workers.append(Relay(self.ledger, settings, bootstrap))
        if which in (WorkerName.ALL, WorkerName.PROJECTIONS):
            workers.append(ProjectionWorker(settings, database_url(settings), bootstrap))
        self.workers = workers
        self.threads: list[threading.Thread] = []

    def start(self) -> Pipeline:
        self.threads = run_until_stopped(self.workers, self.stop_event, self.crashed.append)
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout_s)
        self.ledger.close()

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def run_api(settings: Settings) -> int:
    """Serve the HTTP API on 127.0.0.1 until SIGINT/SIGTERM (uvicorn handles the signals)."""
    import uvicorn  # noqa: PLC0415 - only the API process needs the server

    from ledger.api import create_app  # noqa: PLC0415 - only the API process needs FastAPI

    prepare_topics(settings)
    log.info("api.starting", port=settings.api_port)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=settings.api_port, log_level="warning")
    return 0


def run(settings: Settings, which: WorkerName) -> int:
    """Run until SIGINT/SIGTERM; return the process exit status."""
    if which is WorkerName.API:
        return run_api(settings)
    pipeline = Pipeline(settings, which)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("runner.stopping", signal=signal.Signals(signum).name)
        pipeline.stop_event.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    pipeline.start()
    log.info("runner.started", workers=[w.name for w in pipeline.workers])
    while not pipeline.stop_event.wait(0.5):
        pass
    pipeline.stop()
    if pipeline.crashed:
        log.error("runner.worker_crashed", workers=pipeline.crashed)
        return 1
    return 0
