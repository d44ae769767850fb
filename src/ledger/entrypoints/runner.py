"""`ledger run`: the workers in one process, each in its own thread, stopped cleanly by a signal.

On SIGINT or SIGTERM every worker finishes the batch in hand (its transaction commits or rolls
back whole), closes its connections, and the process exits 0. Separate processes per worker
(`ledger run intake`, ...) scale the same code out; the consumer groups share the partitions.

The intake and the projections can each use more than a core (they do their work in Python),
so `--processes N` (or `LEDGER_INTAKE_PROCESSES`, `LEDGER_PROJECTION_PROCESSES`) starts N-1
more processes of that worker beside this one, sharing the partitions in the consumer group.
They are children: they stop with it, and one of them dying stops the run with exit status 1,
as a crashing worker thread does.
"""

from __future__ import annotations

import faulthandler
import functools
import multiprocessing
import signal
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from commands.intake import IntakeWorker
from ledger.application import Ledger
from ledger.entrypoints import bootstrap
from ledger.entrypoints.names import WorkerName
from ledger.errors import ConfigurationError, StackError
from ledger.heartbeats import HeartbeatWriter
from ledger.logs import configure_logging, get_logger
from ledger.relay import Relay
from ledger.settings import Services, Settings
from ledger.supervision import (
    MAX_BACKOFF_S,
    OUTAGES,
    Worker,
    run_until_stopped,
    tune_garbage_collector,
)
from projections.worker import ProjectionWorker

log = get_logger(__name__)


class Pipeline:
    """The running workers of one process, and the `Ledger` they share."""

    def __init__(
        self,
        settings: Settings,
        services: Services,
        which: WorkerName = WorkerName.ALL,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.services = services
        self.stop_event = stop_event or threading.Event()
        self.crashed: list[str] = []
        bootstrap.prepare_database(services)
        bootstrap.prepare_topics(settings, services)
        layout = bootstrap.layout(settings, services)
        #: Workers holding a `Ledger` of their own, closed with them.
        self.owned: list[Relay] = []
        # A `Ledger` on each shard of the event store; the first is the ledger's database.
        self.shards: list[Ledger] = bootstrap.open_shards(services)
        self.ledger: Ledger = self.shards[0]
        self.heartbeats = HeartbeatWriter(lambda: bootstrap.connect(services, connect_timeout=5))
        kafka = services.kafka_bootstrap
        workers: list[Worker] = []
        if which in (WorkerName.ALL, WorkerName.INTAKE):
            workers.append(
                IntakeWorker(
                    self.ledger,
                    settings,
                    kafka,
                    settings.intake_batch,
                    more_shards=self.shards[1:],
                    reopen=lambda n: bootstrap.open_ledger(services, shard=n),
                )
            )
        if which in (WorkerName.ALL, WorkerName.RELAY):
            # Each relay on a `Ledger` of its own: it opens it afresh after an outage.
            for n in range(len(self.shards)):
                reopen = functools.partial(bootstrap.open_ledger, services, shard=n)
                relay = Relay(reopen(), settings, kafka, layout=layout, shard=n, reopen=reopen)
                self.owned.append(relay)
                workers.append(relay)
        if which in (WorkerName.ALL, WorkerName.PROJECTIONS):
            workers.append(ProjectionWorker(settings, services.database_url, kafka))
        if which is WorkerName.BRIDGE:
            workers.append(_openedx_bridge(self.ledger, settings, services))
        if which is WorkerName.XAPI:
            workers.append(_xapi_follower(settings, services))
        self.workers = workers
        self.threads: list[threading.Thread] = []

    def start(self) -> Pipeline:
        self.threads = run_until_stopped(
            self.workers, self.stop_event, self.crashed.append, self.heartbeats
        )
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout_s)
        self.heartbeats.close()
        for shard in self.shards:
            shard.close()
        for relay in self.owned:
            relay.ledger.close()

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _openedx_bridge(ledger: Ledger, settings: Settings, services: Services) -> Worker:
    """The Open edX bridge, its mapping checked first (a bad one stops it before it starts)."""
    from bridges.openedx.avro import Schemas  # noqa: PLC0415 - needs the [openedx] extra
    from bridges.openedx.mapping import load_mapping  # noqa: PLC0415
    from bridges.openedx.worker import OpenEdxBridge  # noqa: PLC0415

    if settings.openedx_mapping is None:
        raise ConfigurationError(
            "the Open edX bridge needs its mapping: set LEDGER_OPENEDX_MAPPING to the mapping "
            "file (docs/openedx.md)"
        )
    mapping = load_mapping(settings.openedx_mapping)
    schemas = Schemas(settings.openedx_schema_registry)
    return OpenEdxBridge(ledger, settings, services, mapping, schemas)


def _xapi_follower(settings: Settings, services: Services) -> Worker:
    from bridges.xapi.follower import XapiFollower  # noqa: PLC0415

    return XapiFollower(settings, services)


def run_api(settings: Settings) -> int:
    """Serve the HTTP API on `LEDGER_API_HOST` until SIGINT/SIGTERM (uvicorn handles the
    signals)."""
    import uvicorn  # noqa: PLC0415 - only the API process needs the server

    from ledger.entrypoints.web.app import create_app  # noqa: PLC0415 - the API process alone

    log.info("api.starting", host=settings.api_host, port=settings.api_port)
    # uvicorn's own lines go through the ledger's logging (JSON off a terminal); each request
    # is logged once by the app itself (`web.requestlog`), so uvicorn's access log is off.
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        log_config=None,
        access_log=False,
    )
    return 0


def _worker_process(settings: Settings, which: WorkerName) -> None:
    """Entry point of an extra worker process (started with spawn: no inherited threads)."""
    configure_logging(settings.log_format, settings.log_level, settings.kafka_log)
    raise SystemExit(run(settings, which, processes=1))


def start_worker_processes(settings: Settings, which: WorkerName, count: int) -> list[BaseProcess]:
    """Start `count` child processes running only the `which` worker."""
    context = multiprocessing.get_context("spawn")
    children: list[BaseProcess] = []
    for n in range(count):
        child = context.Process(
            target=_worker_process, args=(settings, which), name=f"ledger-{which}-{n + 2}"
        )
        child.start()
        children.append(child)
    log.info("runner.worker_processes", worker=str(which), started=[c.pid for c in children])
    return children


def stop_processes(children: list[BaseProcess], timeout_s: float = 30.0) -> None:
    """SIGTERM every child (each finishes its batch), then wait; kill those that hang."""
    for child in children:
        if child.is_alive():
            child.terminate()
    for child in children:
        child.join(timeout_s)
        if child.is_alive():
            log.error("runner.process_killed", pid=child.pid, name=child.name)
            child.kill()
            child.join()


#: What a worker starting up waits out: an outage, or the embedded server not running (yet).
_SERVICES_AWAY: tuple[type[BaseException], ...] = (*OUTAGES, StackError)


def open_pipeline(settings: Settings, which: WorkerName, stop: threading.Event) -> Pipeline | None:
    """The pipeline, once PostgreSQL and Kafka answer: a worker started during an outage
    waits it out (saying so once) instead of exiting; None if stopped meanwhile."""
    wait = 0.0
    waiting_since: float | None = None
    while not stop.is_set():
        try:
            pipeline = Pipeline(settings, bootstrap.services(settings), which, stop)
        except _SERVICES_AWAY as error:
            wait = min(MAX_BACKOFF_S, max(0.5, wait * 2))
            if waiting_since is None:
                waiting_since = time.monotonic()
                log.warning(
                    "runner.waiting",
                    error=str(error)[:500],
                    error_type=type(error).__name__,
                    retry_in_s=wait,
                )
            stop.wait(wait)
            continue
        if waiting_since is not None:
            log.info("runner.services_up", waited_s=round(time.monotonic() - waiting_since, 1))
        return pipeline
    return None


def run(settings: Settings, which: WorkerName, processes: int | None = None) -> int:
    """Run until SIGINT/SIGTERM; return the process exit status."""
    if which is WorkerName.API:
        return run_api(settings)
    tune_garbage_collector()
    # Extra processes for the workers that scale out by sharing partitions.
    extra: dict[WorkerName, int] = {}
    for worker, configured in (
        (WorkerName.INTAKE, settings.intake_processes),
        (WorkerName.PROJECTIONS, settings.projection_processes),
    ):
        if which in (WorkerName.ALL, worker):
            wanted = configured if processes is None else processes
            extra[worker] = wanted - 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("runner.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # `kill -USR1 PID` prints every thread's stack to stderr: what a worker is doing, live.
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    pipeline = open_pipeline(settings, which, stop)
    if pipeline is None:
        return 0  # stopped while waiting for the services
    children = [
        child
        for worker, count in extra.items()
        if count > 0
        for child in start_worker_processes(settings, worker, count)
    ]
    pipeline.start()
    log.info(
        "runner.started", workers=[w.name for w in pipeline.workers], processes=1 + len(children)
    )
    while not pipeline.stop_event.wait(0.5):
        for child in [c for c in children if not c.is_alive()]:
            children.remove(child)
            if child.exitcode == 0:  # stopped by a signal of its own: the others carry on
                log.info("runner.process_stopped", name=child.name, pid=child.pid)
                continue
            log.error(
                "runner.process_crashed", name=child.name, pid=child.pid, exitcode=child.exitcode
            )
            pipeline.crashed.append(child.name)
            pipeline.stop_event.set()
    stop_processes(children)
    pipeline.stop()
    if pipeline.crashed:
        log.error("runner.worker_crashed", workers=pipeline.crashed)
        return 1
    return 0
