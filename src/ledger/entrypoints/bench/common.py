"""What every benchmark shares: scratch databases and topics, worker processes started together,
medians, and the table of figures beside their raw baselines.

A benchmark measures in a database and topics of its own (`scratch`), created for the run and
dropped after it; worker processes join their consumer group before any of them is let go
(`run_worker_processes`), so what is timed is work, not the group forming.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import psycopg
from kafka import KafkaConsumer
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from commands.intake import IntakeWorker
from ledger import kafka_records
from ledger.broker import BrokerUnavailableError, delete_topics_under
from ledger.entrypoints import bootstrap
from ledger.errors import LedgerError
from ledger.logs import configure_logging, get_logger
from ledger.settings import Services, Settings
from ledger.supervision import tune_garbage_collector
from projections.catalog import READ_MODELS
from projections.model import ReadModel
from projections.read_models import certificates, credentials
from projections.worker import ProjectionWorker

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event as EventType

    from bridges.openedx.worker import OpenEdxBridge
    from ledger.application import Ledger


log = get_logger(__name__)


@dataclass(frozen=True)
class Scratch:
    """A benchmark's own database and topics: the settings name the topics (their prefix),
    the services the database."""

    settings: Settings
    services: Services
    #: The level the benchmark's worker processes log at: warning (the default) leaves the
    #: per-message lines out of what is measured; info measures them as production writes
    #: them (rendered as JSON, written to /dev/null).
    worker_log_level: str = "warning"


T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


COURSES = [f"ds-{n}" for n in range(1, 10)]


@dataclass(frozen=True)
class Figure:
    name: str
    per_second: float
    seconds: float
    count: int


def raw_kafka(bootstrap: str, topic: str, expected: int) -> Figure:
    """kafka-python, as released, reading every message of the topic and doing nothing with
    it (without `ledger.kafka_records`' faster reader, which the workers use)."""
    with kafka_records.stock_reader():
        return _consume_all(bootstrap, topic, expected)


def _consume_all(bootstrap: str, topic: str, expected: int) -> Figure:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    count = 0
    started: float | None = None
    try:
        deadline = time.monotonic() + 300
        while count < expected and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=500)
            if batches and started is None:
                started = time.perf_counter()
            count += sum(len(b) for b in batches.values())
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        consumer.close()
    return Figure("kafka-python consume, no work", count / max(elapsed, 1e-9), elapsed, count)


#: The projection worker's kinds in a benchmark: every read model, or the read models as they
#: would be without credentials (to measure what issuing them costs, in the same run).
PROJECTIONS = "projections"
WITHOUT_CREDENTIALS = "projections-without-credentials"


def _without_credentials(model: ReadModel) -> ReadModel | None:
    """`model` as it would be if the ledger issued no credentials: the credentials model not at
    all, the certificates model's rows without the columns and index only credentials need."""
    if model.name == credentials.NAME:
        return None
    if model.name != certificates.NAME:
        return model
    table = certificates.CERTIFICATES
    only = certificates.CREDENTIAL_COLUMNS
    plain = replace(
        table,
        columns=tuple(c for c in table.columns if c[0] not in only),
        indexes=tuple(i for i in table.indexes if i not in only),
        store_order=(),
    )
    return replace(model, tables=(plain,))


def read_models(kind: str) -> tuple[ReadModel, ...]:
    """The read models a benchmark's projection worker of `kind` keeps."""
    if kind == WITHOUT_CREDENTIALS:
        return tuple(m for m in map(_without_credentials, READ_MODELS) if m is not None)
    return READ_MODELS


def _worker_child(
    scratch: Scratch,
    kind: str,
    assigned: Queue[tuple[int, int, bool]],
    go: EventType,
    started: Queue[float],
    stop: EventType,
) -> None:
    """One worker process of a benchmark (`kind`: intake, bridge, or one of the projections'): join
    the group and hand out nothing (reporting how many partitions it holds) until `go`; then
    report when it first handled records, and run until told to stop."""
    settings, services = scratch.settings, scratch.services
    if scratch.worker_log_level != "warning":
        sys.stderr = Path(os.devnull).open("w")  # noqa: SIM115 - the stream until the end
        configure_logging("json", scratch.worker_log_level)
    else:
        configure_logging(settings.log_format, "warning")
    tune_garbage_collector()  # as `ledger run` does
    kafka = services.kafka_bootstrap
    shards = bootstrap.open_shards(services) if kind in ("intake", "bridge") else []
    ledger = shards[0] if shards else None
    worker: IntakeWorker | ProjectionWorker | OpenEdxBridge
    if kind == "bridge" and ledger is not None:
        worker = _bridge(ledger, settings, services)
    elif ledger is not None:
        worker = IntakeWorker(
            ledger, settings, kafka, settings.intake_batch, more_shards=shards[1:]
        )
    else:
        worker = ProjectionWorker(
            settings, services.database_url, kafka, read_models=read_models(kind)
        )
    consumer = worker.consumer()
    consumer.hold()
    held: tuple[int, bool] | None = None
    first: float | None = None
    try:
        while not go.is_set() and not stop.is_set():
            worker.step()  # joins the group; the held consumer hands out no records
            now = (len(consumer.assignment()), consumer.group_is_stable())
            if now != held:
                held = now
                assigned.put((os.getpid(), *now))
        consumer.release()
        while not stop.is_set():
            before = time.monotonic()
            if worker.step() and first is None:
                first = before
                started.put(first)
    finally:
        worker.close()
        for shard in shards:
            shard.close()


def _bridge(ledger: Ledger, settings: Settings, services: Services) -> OpenEdxBridge:
    from bridges.openedx.avro import Schemas  # noqa: PLC0415 - the [openedx] extra
    from bridges.openedx.mapping import load_mapping  # noqa: PLC0415
    from bridges.openedx.worker import OpenEdxBridge  # noqa: PLC0415

    if settings.openedx_mapping is None:
        raise LedgerError("the bridge benchmark's settings name no mapping")
    return OpenEdxBridge(
        ledger, settings, services, load_mapping(settings.openedx_mapping), Schemas()
    )


def _wait_for_group(
    assigned: Queue[tuple[int, int, bool]],
    processes: int,
    partitions: int,
    timeout_s: float = 120.0,
) -> None:
    """Until every process holds some partitions, together they hold them all, and each
    believes its group stable, with nothing changing for `GROUP_SETTLE_S`.

    The broker may call a group stable while a member still has a rejoin to make: kafka-python
    then spent about three seconds in the first poll after the start (a rejoin, its state
    "rebalancing"), and that run measured at two thirds of its peers.
    """
    latest: dict[int, tuple[int, bool]] = {}
    deadline = time.monotonic() + timeout_s
    settled_since: float | None = None
    while time.monotonic() < deadline:
        try:
            pid, count, stable = assigned.get(timeout=0.1)
        except queue.Empty:
            if settled_since is not None and time.monotonic() - settled_since >= GROUP_SETTLE_S:
                return
            continue
        latest[pid] = (count, stable)
        shared = len(latest) == processes and all(c and s for c, s in latest.values())
        whole = sum(c for c, _ in latest.values()) == partitions
        settled_since = time.monotonic() if shared and whole else None
    raise LedgerError(f"the benchmark's {processes} processes did not share the partitions")


#: How long a benchmark's group must stay as it is before the clock may start.
GROUP_SETTLE_S = 1.0


#: How often a benchmark asks how far its workers are: often enough to time a run of a few
#: seconds to a percent or two, seldom enough not to take CPU from the workers it measures.
POLL_S = 0.05


def run_worker_processes(
    scratch: Scratch,
    kind: str,
    processes: int,
    done_so_far: Callable[[], int],
    expected: int,
    progress: Callable[[int], None],
    on_start: Callable[[], None] | None = None,
    on_finish: Callable[[], None] | None = None,
) -> tuple[float, int]:
    """Run `processes` benchmark workers of `kind`, all in the group before any starts, until
    `done_so_far()` reaches `expected`; return the seconds from the first poll that returned
    records to then, and the count. `on_start` is called as they are let go, `on_finish` once
    they are done, while they (and their database sessions) still exist."""
    context = multiprocessing.get_context("spawn")
    assigned: Queue[tuple[int, int, bool]] = context.Queue()
    started: Queue[float] = context.Queue()
    go = context.Event()
    stop = context.Event()
    children = [
        context.Process(
            target=_worker_child,
            args=(scratch, kind, assigned, go, started, stop),
            daemon=True,
        )
        for _ in range(processes)
    ]
    done = 0
    finished: float | None = None
    try:
        for child in children:
            child.start()
        _wait_for_group(assigned, processes, scratch.settings.partitions)
        if on_start is not None:
            on_start()
        go.set()
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            done = done_so_far()
            progress(done)
            if done >= expected:
                finished = time.monotonic()
                if on_finish is not None:
                    on_finish()
                break
            if any(c.exitcode not in (None, 0) for c in children):
                raise LedgerError(f"a {kind} process of the benchmark crashed; see its log")
            time.sleep(POLL_S)
    finally:
        stop.set()
        for child in children:
            child.join(60)
    if finished is None:
        raise LedgerError(f"the {kind} workers handled {done} of {expected} in 30 minutes")
    firsts = []
    while not started.empty():
        firsts.append(started.get())
    return finished - min(firsts), done


def intake_rate(
    own: Scratch,
    kind: str,
    processes: int,
    topic: str,
    expected: int,
    progress: Callable[[int], None],
) -> tuple[float, int]:
    """`run_worker_processes` for a worker that commits its progress as intake positions of
    `topic` (the intake, a bridge): seconds and records handled."""
    ledger = bootstrap.open_ledger(own.services)
    recorder = ledger.ledger_recorder
    try:
        return run_worker_processes(
            own,
            kind,
            processes,
            lambda: sum(recorder.intake_positions(topic).values()),
            expected,
            progress,
        )
    finally:
        ledger.close()


def processes_label(processes: int) -> str:
    """ "1 process", "2 processes": how a figure's name says how many ran."""
    return f"{processes} {'process' if processes == 1 else 'processes'}"


@contextmanager
def scratch(
    settings: Settings,
    services: Services,
    topic_prefix: str,
    worker_log_level: str = "warning",
    *,
    shards: int | None = None,
) -> Iterator[Scratch]:
    """A database of its own (created now, tables made, dropped after use), and topic names
    under `topic_prefix` (created by whoever publishes to them; deleted by whoever made the
    prefix, which several scratches may share: `deleting_topics`). An event store of `shards`
    shards (default: as many as the services have), each a database of its own, spread over
    the services' servers in turn."""
    database = f"ledger_bench_{secrets.token_hex(3)}"
    servers = services.shard_urls
    made = [
        (n % len(servers), f"{database}_{n + 1}" if shards else database)
        for n in range(shards or len(servers))
    ]
    for server, name in made:
        with bootstrap.connect(services, shard=server) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        own = Scratch(
            settings.model_copy(update={"topic_prefix": topic_prefix}),
            services.with_database(
                *(bootstrap.database_on(servers[server], name) for server, name in made)
            ),
            worker_log_level,
        )
        bootstrap.prepare_database(own.services)
        yield own
    finally:
        for server, name in made:
            with bootstrap.connect(services, shard=server) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def deleting_topics(services: Services, prefix: str) -> Iterator[None]:
    """Delete a benchmark run's topics (those under `prefix`) when it is done with them: the
    broker here had kept 9,240 partitions of earlier runs, each still kept, checked and
    checkpointed. A broker that is away keeps them, with a warning."""
    try:
        yield
    finally:
        try:
            delete_topics_under(services.kafka_bootstrap, prefix)
        except BrokerUnavailableError as error:
            log.warning("bench.topics_kept", prefix=prefix, error=str(error)[:300])


def time_batches(
    url: str, table: str, ddl: Sequence[str], statement: str, batches: Sequence[Any]
) -> float:
    """The raw PostgreSQL baselines' clock: make `table` (`ddl`), run `statement` once per
    batch of parameters, each in a transaction of its own, drop the table; the seconds the
    batches took (the parameters are built before, by the caller)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in ddl:
            conn.execute(sql)
        try:
            started = time.perf_counter()
            for params in batches:
                with conn.transaction():
                    conn.execute(statement, params)
            return time.perf_counter() - started
        finally:
            conn.execute(f"DROP TABLE {table}")


def quiet_after_filling(where: Services) -> None:
    """Vacuum and analyze what filling a benchmark's ledger wrote, now rather than during a
    measured run.

    Filling a fresh database stores tens of thousands of rows into small new tables, whose
    autovacuum thresholds that crosses at once: the vacuum and analyze would otherwise start
    in the middle of whichever measured run came next and take a core from it (a rebuild a
    third slower; a steady latency load seconds behind)."""
    with bootstrap.connect(where) as conn:  # autocommit: VACUUM runs outside a transaction
        conn.execute("VACUUM (ANALYZE)")


def settle(services: Services) -> None:
    """Write out what earlier runs left dirty (a checkpoint), so a measured run does not pay
    for its predecessor's writes (the checkpoint that follows a big load falls in whichever run
    comes next)."""
    with bootstrap.connect(services) as conn:
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            log.warning("bench.no_checkpoint", reason="the database user may not CHECKPOINT")


Measure = Callable[[Scratch, int, Callable[[int], None]], Figure]


def per_process_count(
    settings: Settings,
    services: Services,
    prefix: str,
    runs: Sequence[int],
    total: int,
    label: str,
    measure: Measure,
    console: Console,
    worker_log_level: str = "warning",
) -> Iterator[tuple[int, Figure]]:
    """`measure` once per process count in `runs`, each on a fresh database beside the topics
    named by `prefix`, with a progress bar up to `total`."""
    for count in runs:
        settle(services)
        with (
            scratch(settings, services, prefix, worker_log_level) as own,
            Progress(console=console, transient=True) as bar,
        ):
            task = bar.add_task(f"{label}, {count} process(es)", total=total)

            def advance(done: int, task: TaskID = task, bar: Progress = bar) -> None:
                bar.update(task, completed=done)

            yield count, measure(own, count, advance)


def median(runs: list[Figure]) -> Figure:
    rates = [f.per_second for f in runs]
    middle = statistics.median(rates)
    chosen = min(runs, key=lambda f: abs(f.per_second - middle))
    return Figure(chosen.name, middle, chosen.seconds, chosen.count)


def print_figures(console: Console, figures: list[Figure], title: str, baselines: int = 2) -> None:
    """The table: the first `baselines` rows are raw measures, each later row is compared
    with every one of them."""
    table = Table(title=title)
    for column in ("measure", "per second (median)", "count", "seconds"):
        table.add_column(column, justify="right")
    for base in figures[:baselines]:
        table.add_column(f"/ {base.name.split(',')[0]}", justify="right")
    for n, f in enumerate(figures):
        ratios = (
            [""] * baselines
            if n < baselines
            else [f"{f.per_second / b.per_second:.0%}" for b in figures[:baselines]]
        )
        table.add_row(f.name, f"{f.per_second:,.0f}", f"{f.count:,}", f"{f.seconds:.2f}", *ratios)
    console.print(table)


def worker_env(own: Scratch, api_port: int, log_level: str = "info") -> dict[str, str]:
    """The environment under which `ledger run` works on the run's database and topics."""
    settings = own.settings
    env = dict(os.environ)
    env.update(
        {
            "LEDGER_STATE_DIR": str(settings.state_path),
            "LEDGER_DATABASE_URL": own.services.database_url,
            "LEDGER_SHARDS": " ".join(own.services.shard_urls),
            "LEDGER_TOPIC_PREFIX": settings.topic_prefix,
            "LEDGER_API_PORT": str(api_port),
            "LEDGER_LOG_FORMAT": "json",
            "LEDGER_LOG_LEVEL": log_level,
        }
    )
    return env


def staff_headers(services: Services, name: str) -> dict[str, str]:
    """Request headers carrying a token that holds every staff role, made in the run's own
    database: the load and the fuzzer ask the API as a member of staff would."""
    from ledger.entrypoints.staff import tokens  # noqa: PLC0415
    from ledger.entrypoints.staff.roles import Role  # noqa: PLC0415

    with bootstrap.connect(services) as conn:
        issued = tokens.issue(conn, name, frozenset(Role), None)
    return {"Authorization": f"Bearer {issued.secret}"}


@dataclass(frozen=True)
class Latency:
    """One query's latency over its samples, in milliseconds."""

    query: str
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    #: The p99 it is asked to stay under, if any.
    target_ms: float | None = None


def latency_of(name: str, seconds: list[float], target_ms: float | None = None) -> Latency:
    """Milliseconds of `seconds`: median, 99th percentile, max."""
    ms = sorted(s * 1000 for s in seconds)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return Latency(name, len(ms), cuts[49], cuts[98], ms[-1], target_ms)
