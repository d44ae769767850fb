"""`ledger bench latency`: how long after a service publishes a message support staff see it.

Throughput says how much the pipeline can take; latency is what its users feel: a payment
captured, then a learner on the phone asking why the console does not show it yet. This
benchmark runs the real workers (`ledger run intake`, `relay`, `projections`, each a process
of its own, as a deployment runs them) on a database and topics of its own, and:

1. **Full load.** Publishes a burst of messages as fast as the producer goes and times the
   intake through it (its maximum, with the rest of the pipeline working beside it), and the
   whole pipeline (until every read model has applied the burst). Tuning for latency must not
   lower these figures.
2. **Raw baselines,** on the same machine in the same run: a Kafka round trip (produce with
   `acks=all`, consumed by a consumer already waiting, no work) and a PostgreSQL commit of one
   small row. No hop of the ledger can be faster than these.
3. **Steady load.** Interleaved learners and every message type at a fixed rate (by default
   half the pipeline's maximum just measured) for a fixed time. For a sample of the messages
   it records, from the moment before `send`:
   (a) *stored*: the intake's committed position in PostgreSQL has passed the message (the
   events and the position commit in one transaction);
   (b) *on ledger.events*: the learner's newest event as of (a) reached a consumer of
   `ledger.events` (an observer this benchmark runs, polling all the time);
   (c) *in the read models*: every read model's committed position on that partition has
   passed that record.
   Positions are read every `POLL_MS` milliseconds, so (a) and (c) are late by half that on
   average; (b) is an upper bound when a later message of the same learner was stored in the
   same batch (rare: a learner's messages are seconds apart in this load).
   The first `WARM_UP_S` seconds of the steady load are sent at its rate but not sampled:
   they follow the burst, its vacuum and a checkpoint, and an idle pipeline, and in runs
   that sampled them their first second held most samples over 200 ms, a third of runs
   their p99 (`docs/performance.md`): the start of the benchmark, not a steady load.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import confluent_kafka
import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from psycopg.sql import SQL, Composed, Identifier
from rich.console import Console
from rich.table import Table

from ledger.broker import OutRecord, Producer, ensure_topics, produce
from ledger.domain import learner_aggregate_id
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import (
    Scratch,
    deleting_topics,
    quiet_after_filling,
    scratch,
    settle,
    worker_env,
)
from ledger.entrypoints.bench.cpu import CpuUse, CpuWindow
from ledger.entrypoints.bench.intake import bench_messages
from ledger.entrypoints.chaos.load import wait_for_catalog
from ledger.entrypoints.chaos.processes import Workers
from ledger.entrypoints.pipeline_stages import read_stages
from ledger.errors import LedgerError
from ledger.settings import Services, Settings
from projections import generations
from projections.catalog import READ_MODELS

#: How often the sampler reads the committed positions (milliseconds).
POLL_MS = 5
#: The end-to-end targets (publish to read model), milliseconds.
TARGET_P50_MS = 100.0
TARGET_P99_MS = 500.0
#: Seconds of steady load sent before sampling begins (the module docstring says why).
WARM_UP_S = 3.0
#: The workers of a run: one process each, as `ledger run ROLE` runs them.
ROLES = [("intake", "intake"), ("relay", "relay"), ("projections", "projections")]
BASELINE_SAMPLES = 300
#: This process, in the CPU table: the load generator, the observer and the sampler.
BENCH_ITSELF = "this benchmark (load, observer, sampler)"


@dataclass(frozen=True)
class Spread:
    """One hop's latency over its samples, in milliseconds."""

    name: str
    samples: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def spread(name: str, seconds: list[float]) -> Spread:
    """Percentiles of `seconds`, in milliseconds (nearest rank on the sorted samples)."""
    if len(seconds) < 2:
        raise LedgerError(f"{name}: too few samples ({len(seconds)}) to give percentiles")
    ms = sorted(s * 1000 for s in seconds)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return Spread(name, len(ms), cuts[49], cuts[89], cuts[98], ms[-1])


@dataclass(frozen=True)
class StageActivity:
    """What one worker did during the steady load, from its own `*.batch` log lines: how
    many batches, how big, how long each took, and the share of the time it was busy."""

    name: str
    batches: int
    median_records: float
    median_ms: float
    p90_ms: float
    busy: float


#: Each worker's per-batch line: (log file, event, the field counting its records, a filter).
_BATCH_LINES = (
    ("intake", "intake.batch", "records", None),
    ("relay", "relay.published", "count", ("stream", "events")),
    ("projections", "projections.batch", "records", None),
)


def stage_activity(logs: Path, started: float, ended: float) -> list[StageActivity]:
    """Each worker's batches between the wall-clock times `started` and `ended`."""
    found = []
    for worker, event, count_field, only in _BATCH_LINES:
        sizes: list[float] = []
        seconds: list[float] = []
        for line in (logs / f"{worker}.log").read_text(errors="replace").splitlines():
            if f'"{event}"' not in line:
                continue
            try:
                fields = json.loads(line)
                at = datetime.fromisoformat(fields["timestamp"]).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            if fields.get("event") != event or not started <= at <= ended:
                continue
            if only is not None and fields.get(only[0]) != only[1]:
                continue
            sizes.append(float(fields.get(count_field, 0)))
            seconds.append(float(fields.get("seconds", 0.0)))
        if not seconds:
            found.append(StageActivity(worker, 0, 0.0, 0.0, 0.0, 0.0))
            continue
        ms = sorted(x * 1000 for x in seconds)
        found.append(
            StageActivity(
                worker,
                len(ms),
                statistics.median(sizes),
                statistics.median(ms),
                ms[min(len(ms) - 1, int(len(ms) * 0.9))],
                sum(seconds) / (ended - started),
            )
        )
    return found


@dataclass
class Sample:
    """One sampled message on its way through the pipeline (monotonic seconds)."""

    learner: UUID
    sent: float
    partition: int = -1
    offset: int = -1
    stored: float | None = None
    #: The learner's newest notification id when the message was seen stored.
    position: int | None = None
    published: float | None = None
    events_partition: int = -1
    events_offset: int = -1
    visible: float | None = None
    #: The message made no event (a duplicate, a rejection, a no-op): the learner's newest
    #: event as of (a) reached `ledger.events` before it was sent. Only (a) applies to it.
    no_event: bool = False


@dataclass
class LatencyFigures:
    """What a run measured."""

    max_rate: float
    #: The whole pipeline's rate through the burst (publish to every read model).
    pipeline_rate: float
    burst: int
    rate: float
    seconds: float
    sent: int
    hops: list[Spread] = field(default_factory=list)
    baselines: list[Spread] = field(default_factory=list)
    unfinished: int = 0
    #: Cores each part of the machine kept busy while the steady load was sent, and the
    #: machine's cores busy in all (`bench.cpu`).
    cpu: list[CpuUse] = field(default_factory=list)
    machine_cores_busy: float = 0.0
    #: Samples whose message made no event (a duplicate, a rejection): only (a) applies.
    eventless: int = 0
    stages: list[StageActivity] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "intake_max_per_second": round(self.max_rate, 1),
            "pipeline_max_per_second": round(self.pipeline_rate, 1),
            "burst": self.burst,
            "rate_per_second": round(self.rate, 1),
            "seconds": self.seconds,
            "sent": self.sent,
            "unfinished": self.unfinished,
            "eventless": self.eventless,
            "hops": [vars(h) for h in self.hops],
            "baselines": [vars(b) for b in self.baselines],
            "stages": [vars(a) for a in self.stages],
            "cpu": [vars(c) for c in self.cpu],
            "machine_cores_busy": round(self.machine_cores_busy, 3),
            "cores": os.cpu_count(),
        }


def interleaved(records: list[OutRecord], seed: int) -> list[OutRecord]:
    """The records of many learners mixed as traffic mixes them: each learner's own messages
    keep their order, and the learners take turns in a seeded random order."""
    queues: dict[bytes, list[OutRecord]] = defaultdict(list)
    for record in records:
        queues[record.key or b""].append(record)
    rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
    turns = [key for key, queue in queues.items() for _ in queue]
    rng.shuffle(turns)
    taken: dict[bytes, int] = defaultdict(int)
    out = []
    for key in turns:
        out.append(queues[key][taken[key]])
        taken[key] += 1
    return out


def _learner_messages(topic: str, messages: int, learners: int, seed: int) -> list[OutRecord]:
    """`messages` for `learners` new learners, interleaved, without the catalog message."""
    records = bench_messages(topic, messages + 1, learners, seed)
    return interleaved([r for r in records if r.key != b"ds"], seed)


class _LoadProducer:
    """The steady load's sender: a platform service's producer as Open edX's event bus builds
    one, on librdkafka (`confluent-kafka`): idempotent, `acks=all`, librdkafka's default
    linger (5 ms, Kafka's own clients' default since 4.0 too), and the Java client's
    partitioner (murmur2), as the ledger's own clients place keys. With a 1 ms linger the
    broker took 0.3-0.5 of a core answering its requests during the steady load; with 5, 0.24.

    The load generator shares the machine with what it measures, so it must cost little:
    sending 1,800 messages/s alone, kafka-python's producer kept 0.73-0.77 of a core busy,
    librdkafka 0.13-0.14 (`docs/performance.md`)."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        """Connected, and `topic`'s partitions known, before the first message: a service's
        producer is long-lived, and its first send would wait for both."""
        self._producer = confluent_kafka.Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "client.id": "ledger-bench-latency",
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "partitioner": "murmur2_random",
            }
        )
        self._producer.list_topics(topic, timeout=30)

    def send(self, record: OutRecord, delivered: Callable[[int, int], None] | None = None) -> None:
        """Queue `record`; `delivered(partition, offset)` once the broker has acknowledged it
        (called from `wait` or a later `send`)."""

        def report(error: Any, message: Any) -> None:
            if error is None and delivered is not None:
                delivered(message.partition(), message.offset())

        produce(self._producer, record, report)
        self._producer.poll(0)

    def wait(self, seconds: float) -> None:
        """Pass `seconds`, handling acknowledgements meanwhile."""
        self._producer.poll(max(seconds, 0.0))

    def flush(self, timeout_s: float = 60.0) -> None:
        left = self._producer.flush(timeout_s)
        if left:
            raise LedgerError(f"{left} messages of the steady load were never acknowledged")


def _producer(bootstrap_servers: str) -> KafkaProducer:
    """A platform service's producer: idempotent, `acks=all`, a short linger."""
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=1,
        client_id="ledger-bench-latency",
    )


def kafka_round_trip(bootstrap_servers: str, topic: str, samples: int) -> Spread:
    """Produce one small record (`acks=all`) and time until a waiting consumer has it."""
    ensure_topics(bootstrap_servers, {topic: 1}, {})
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    producer = _producer(bootstrap_servers)
    partition = TopicPartition(topic, 0)
    seconds: list[float] = []
    try:
        consumer.assign([partition])
        consumer.seek_to_end(partition)
        consumer.position(partition)
        for n in range(samples + 10):
            started = time.monotonic()
            producer.send(topic, value=str(n).encode())
            producer.flush()
            got = False
            while not got and time.monotonic() - started < 10:
                got = any(consumer.poll(timeout_ms=100, max_records=10).values())
            if n >= 10:  # the first few warm the connections
                seconds.append(time.monotonic() - started)
            time.sleep(0.005)
    finally:
        producer.close()
        consumer.close()
    return spread("raw Kafka round trip (produce acks=all, consume)", seconds)


def postgres_commit(services: Services, samples: int) -> Spread:
    """Insert one small row and commit, one transaction each."""
    seconds: list[float] = []
    with bootstrap.connect(services) as conn:
        conn.autocommit = False
        conn.execute("CREATE TABLE IF NOT EXISTS bench_latency_probe (n int, at timestamptz)")
        conn.commit()
        for n in range(samples + 10):
            started = time.monotonic()
            conn.execute("INSERT INTO bench_latency_probe VALUES (%s, now())", (n,))
            conn.commit()
            if n >= 10:
                seconds.append(time.monotonic() - started)
            time.sleep(0.002)
    return spread("raw PostgreSQL commit (one row)", seconds)


class _Observer(threading.Thread):
    """A consumer of `ledger.events` from its current end: when each event (by its position in
    the notification log) reached it, and where it is on the topic.

    On librdkafka, as the load generator: it reads every event the relay publishes (2,000-4,000
    a second here), and a kafka-python consumer parsing them in Python was most of this
    benchmark's own share of the two cores, taken from the workers it measures."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        super().__init__(name="latency-observer", daemon=True)
        self.consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": f"latency-observer-{secrets.token_hex(4)}",  # assigned, never joins
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 50,
                "logger": logging.getLogger("kafka.librdkafka"),
            }
        )
        metadata = self.consumer.list_topics(topic, timeout=10)
        # Each partition's end now, read before assigning: with OFFSET_END librdkafka looks it
        # up in the background, and an event published meanwhile would be skipped.
        partitions = []
        for p in sorted(metadata.topics[topic].partitions):
            partition = confluent_kafka.TopicPartition(topic, p)
            _low, high = self.consumer.get_watermark_offsets(partition, timeout=10)
            partitions.append(confluent_kafka.TopicPartition(topic, p, high))
        self.consumer.assign(partitions)
        self.seen: dict[int, tuple[float, int, int]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            # `consume` waits for its whole batch or the timeout: wait for one message, then
            # take what has already arrived, so nothing is seen later than it came.
            first = self.consumer.poll(0.1)
            if first is None:
                continue
            messages = [first, *self.consumer.consume(num_messages=1000, timeout=0)]
            now = time.monotonic()
            found: dict[int, tuple[float, int, int]] = {}
            for message in messages:
                partition, offset = message.partition(), message.offset()
                if message.error() is not None or partition is None or offset is None:
                    continue
                headers = message.headers()  # a list of pairs (typed as a dict too)
                for name, value in headers if isinstance(headers, list) else []:
                    if name == "ledger_position" and isinstance(value, bytes):
                        found[int(value)] = (now, partition, offset)
            if found:
                with self.lock:
                    self.seen.update(found)
        self.consumer.close()

    def arrival(self, position: int) -> tuple[float, int, int] | None:
        with self.lock:
            return self.seen.get(position)


class _Sampler(threading.Thread):
    """Reads the committed positions every `POLL_MS` and moves each sample along its hops."""

    def __init__(self, own: Scratch, observer: _Observer) -> None:
        super().__init__(name="latency-sampler", daemon=True)
        self.own = own
        self.observer = observer
        self.samples: list[Sample] = []
        self.waiting: list[Sample] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        #: Set once connected and reading positions: no sample is taken before.
        self.ready = threading.Event()
        #: The read models' live position tables, read as one query (set when it starts).
        self.models = 0
        self.offsets_sql: Composed = Composed([])

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)
            self.waiting.append(sample)

    def run(self) -> None:
        with bootstrap.connect(self.own.services) as conn:
            with conn.cursor() as cur:
                schemas = [generations.live_schema(cur, model.name) for model in READ_MODELS]
            self.models = len(schemas)
            self.offsets_sql = SQL(" UNION ALL ").join(
                SQL("SELECT partition, next_offset FROM {}._offsets WHERE topic = %s").format(
                    Identifier(schema)
                )
                for schema in schemas
            )
            self.ready.set()
            while not self.stop.wait(POLL_MS / 1000):
                with self.lock:
                    waiting = list(self.waiting)
                if not waiting:
                    continue
                self._stored(conn, waiting)
                self._published(waiting)
                done = self._visible(conn, waiting)
                if done or any(s.no_event for s in waiting):
                    with self.lock:
                        self.waiting = [
                            s for s in self.waiting if s.visible is None and not s.no_event
                        ]

    def _stored(self, conn: psycopg.Connection[Any], waiting: list[Sample]) -> None:
        """(a): the intake's committed positions have passed the message."""
        intake = dict(
            conn.execute(
                "SELECT partition, next_offset FROM ledger_intake_positions WHERE topic = %s",
                (self.own.settings.intake_topic,),
            ).fetchall()
        )
        now = time.monotonic()
        newly = [
            s
            for s in waiting
            if s.stored is None and s.offset >= 0 and intake.get(s.partition, 0) > s.offset
        ]
        if not newly:
            return
        newest = dict(
            conn.execute(
                "SELECT originator_id, max(notification_id) FROM ledger_events"
                " WHERE originator_id = ANY(%s) GROUP BY originator_id",
                ([s.learner for s in newly],),
            ).fetchall()
        )
        for s in newly:
            s.stored = now
            s.position = newest.get(s.learner)

    def _published(self, waiting: list[Sample]) -> None:
        """(b): the learner's newest event as of (a) reached the observer."""
        for s in waiting:
            if s.position is not None and s.published is None:
                arrival = self.observer.arrival(s.position)
                if arrival is not None and arrival[0] < s.sent:
                    s.no_event = True
                elif arrival is not None:
                    s.published, s.events_partition, s.events_offset = arrival

    def _visible(self, conn: psycopg.Connection[Any], waiting: list[Sample]) -> int:
        """(c): every read model's committed position has passed that record; how many now."""
        if not any(s.published is not None for s in waiting):
            return 0
        params = [self.own.settings.events_topic] * self.models
        ends: dict[int, list[int]] = defaultdict(list)
        for partition, next_offset in conn.execute(self.offsets_sql, params).fetchall():
            ends[int(partition)].append(int(next_offset))
        applied = {p: min(v) for p, v in ends.items() if len(v) == self.models}
        now = time.monotonic()
        done = 0
        for s in waiting:
            if s.published is not None and applied.get(s.events_partition, 0) > s.events_offset:
                s.visible = now
                done += 1
        return done


def _burst(own: Scratch, records: list[OutRecord], console: Console) -> tuple[float, float]:
    """Publish `records` at once; the intake's rate through them, and the whole pipeline's
    (until every read model has applied what they made), messages/s.

    The two differ: during a burst the relay and the projections fall behind and catch up
    after, so the intake alone gets more of the machine than it can have at a steady load,
    where all three share it. Half the intake's burst rate kept the pipeline near saturation
    on two cores; half the pipeline's is the moderate load the speed issue means."""
    settings = own.settings
    before = read_stages(own)
    start_done = before.intake_done if before is not None else 0
    producer = Producer(own.services.kafka_bootstrap, "ledger-bench-latency")
    started = time.monotonic()
    try:
        producer.send_all(records, timeout_s=300)
    finally:
        producer.close()
    deadline = time.monotonic() + 600
    done = 0
    intake_s: float | None = None
    while time.monotonic() < deadline:
        stages = read_stages(own)
        if stages is not None:
            done = stages.intake_done - start_done
            if intake_s is None and done >= len(records):
                intake_s = time.monotonic() - started
            if intake_s is not None and stages.caught_up:
                break
        time.sleep(0.05)
    else:
        raise LedgerError(
            f"the pipeline handled {done:,} of the {len(records):,} messages of the burst "
            f"on {settings.intake_topic} in 10 minutes"
        )
    assert intake_s is not None  # noqa: S101 - the loop leaves only once it is set
    intake, pipeline = len(records) / intake_s, len(records) / (time.monotonic() - started)
    console.print(
        f"full load: {len(records):,} messages through the intake at {intake:,.0f}/s, "
        f"through every read model at {pipeline:,.0f}/s"
    )
    return intake, pipeline


def _steady(
    own: Scratch,
    records: list[OutRecord],
    rate: float,
    seconds: float,
    every: int,
    console: Console,
    cpu: CpuWindow,
) -> tuple[list[Sample], int, tuple[float, float]]:
    """Send `records` at `rate` for `WARM_UP_S` then `seconds`, sampling every `every`-th of
    the second part; wait for the samples. Also the wall-clock times the sampled part began and
    ended (the workers' logs are read by them); `cpu` is started and stopped with it. Returns
    the samples, the messages sent in the sampled part, and those times."""
    kafka = own.services.kafka_bootstrap
    observer = _Observer(kafka, own.settings.events_topic)
    observer.start()
    sampler = _Sampler(own, observer)
    sampler.start()
    producer = _LoadProducer(kafka, own.settings.intake_topic)
    if not sampler.ready.wait(60):
        raise LedgerError("the latency sampler could not read the positions in 60 s")
    warm = int(rate * WARM_UP_S)
    total = min(len(records), warm + int(rate * seconds))
    started = time.monotonic()
    window = [0.0, 0.0]
    next_report = started + WARM_UP_S + 5
    try:
        for n, record in enumerate(records[:total]):
            due = started + n / rate
            pause = due - time.monotonic()
            if pause > 0:
                producer.wait(pause)
            if n == warm:
                cpu.start()
                window[0] = time.time()
            if n < warm or (n - warm) % every:
                producer.send(record)
                continue
            learner = (record.key or b"").decode()
            sample = Sample(learner_aggregate_id(learner), time.monotonic())
            producer.send(record, functools.partial(_placed, sample, sampler))
            if time.monotonic() >= next_report:
                console.print(
                    f"steady load: {n - warm:,} of {total - warm:,} sent, "
                    f"{len(sampler.waiting):,} samples on their way"
                )
                next_report += 5
        producer.flush()
        window[1] = time.time()
        cpu.stop()
        deadline = time.monotonic() + 60
        while sampler.waiting and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sampler.stop.set()
        sampler.join(10)
        observer.stop.set()
        observer.join(10)
    return sampler.samples, total - warm, (window[0], window[1])


def _placed(sample: Sample, sampler: _Sampler, partition: int, offset: int) -> None:
    """The producer's acknowledgement: where the sampled message landed."""
    sample.partition, sample.offset = partition, offset
    sampler.add(sample)


def run_latency_bench(
    base: Settings,
    services: Services,
    *,
    seconds: float,
    rate: float | None,
    burst: int,
    learners: int,
    every: int,
    console: Console,
) -> LatencyFigures:
    """The three parts of the module docstring, on a database and topics of their own."""
    prefix = f"bench-{secrets.token_hex(3)}."
    with scratch(base, services, prefix) as own, deleting_topics(services, prefix):
        settings = own.settings
        bootstrap.prepare_topics(settings, own.services)
        logs = Path(tempfile.mkdtemp(prefix="latency-", dir=settings.state_path))
        workers = Workers(worker_env(own, settings.api_port), logs, ROLES).start()
        try:
            catalog = bench_messages(settings.intake_topic, 1, 1)[0]
            producer = Producer(own.services.kafka_bootstrap, "ledger-bench-latency")
            try:
                producer.send_all([catalog])
            finally:
                producer.close()
            try:
                wait_for_catalog(own.services, ["ds"], timeout_s=60)
            except LedgerError as error:
                raise LedgerError(f"{error}; the workers' logs are in {logs}") from error
            console.print(f"workers up ({', '.join(n for n, _ in ROLES)}); catalog stored")
            burst_records = _learner_messages(settings.intake_topic, burst, learners, seed=1)
            max_rate, pipeline_rate = _burst(own, burst_records, console)
            baselines = [
                kafka_round_trip(own.services.kafka_bootstrap, f"{prefix}probe", BASELINE_SAMPLES),
                postgres_commit(own.services, BASELINE_SAMPLES),
            ]
            # The burst filled small new tables: their vacuum and analyze belong to it, not
            # to the steady load (seen: the projections seconds behind for half of it).
            quiet_after_filling(own.services)
            settle(own.services)
            steady_rate = rate or pipeline_rate / 2
            wanted = int(steady_rate * (WARM_UP_S + seconds)) + 1
            steady_records = _learner_messages(
                settings.intake_topic, wanted, max(learners, wanted // 6), seed=2
            )
            console.print(
                f"steady load: {steady_rate:,.0f} messages/s for {WARM_UP_S:.0f} s unsampled, "
                f"then {seconds:.0f} s with every {every}th sampled"
            )
            roots = {BENCH_ITSELF: os.getpid()}
            roots.update(
                (name, pid) for name, w in workers.by_name.items() if (pid := w.pid) is not None
            )
            cpu = CpuWindow(roots)
            samples, sent, window = _steady(
                own, steady_records, steady_rate, seconds, every, console, cpu
            )
            crashes = sum(len(w.crashes) for w in workers.by_name.values())
        finally:
            workers.stop()
    stages = stage_activity(logs, *window)
    if crashes:
        raise LedgerError(f"{crashes} worker process(es) crashed during the run; logs in {logs}")
    shutil.rmtree(logs, ignore_errors=True)
    done = [s for s in samples if s.visible is not None]
    eventless = [s for s in samples if s.no_event]
    figures = LatencyFigures(
        max_rate,
        pipeline_rate,
        len(burst_records),
        steady_rate,
        seconds,
        sent,
        unfinished=len(samples) - len(done) - len(eventless),
        eventless=len(eventless),
    )
    figures.baselines = baselines
    figures.cpu, figures.machine_cores_busy = cpu.uses, cpu.machine
    figures.stages = stages
    figures.hops = [
        spread(
            "publish → stored (event store)",
            [s.stored - s.sent for s in [*done, *eventless] if s.stored],
        ),
        spread(
            "stored → on ledger.events",
            [s.published - s.stored for s in done if s.published and s.stored],
        ),
        spread(
            "ledger.events → read models",
            [s.visible - s.published for s in done if s.visible and s.published],
        ),
        spread(
            "publish → read models (end to end)", [s.visible - s.sent for s in done if s.visible]
        ),
    ]
    return figures


def print_latency(console: Console, figures: LatencyFigures) -> None:
    table = Table(
        title=(
            f"ledger bench latency: {figures.rate:,.0f} messages/s for {figures.seconds:.0f} s "
            f"(half the pipeline's maximum {figures.pipeline_rate:,.0f}/s; the intake's alone "
            f"{figures.max_rate:,.0f}/s), ms"
        )
    )
    for column in ("hop", "samples", "p50", "p90", "p99", "max"):
        table.add_column(column, justify="left" if column == "hop" else "right")
    for row in [*figures.baselines, *figures.hops]:
        table.add_row(
            row.name,
            f"{row.samples:,}",
            f"{row.p50_ms:.1f}",
            f"{row.p90_ms:.1f}",
            f"{row.p99_ms:.1f}",
            f"{row.max_ms:.1f}",
        )
    console.print(table)
    busy = Table(title="what each worker did during the steady load (its batch log lines)")
    for column in ("worker", "batches", "records per batch", "ms per batch", "p90 ms", "busy"):
        busy.add_column(column, justify="left" if column == "worker" else "right")
    for stage in figures.stages:
        busy.add_row(
            stage.name,
            f"{stage.batches:,}",
            f"{stage.median_records:,.0f}",
            f"{stage.median_ms:.1f}",
            f"{stage.p90_ms:.1f}",
            f"{stage.busy:.0%}",
        )
    console.print(busy)
    if figures.cpu:
        cores = os.cpu_count() or 0
        use = Table(
            title=(
                f"cores kept busy while the steady load was sent (the machine has {cores}; "
                f"{figures.machine_cores_busy:.2f} busy in all)"
            )
        )
        use.add_column("part", justify="left")
        use.add_column("cores", justify="right")
        for part in figures.cpu:
            use.add_row(part.name, f"{part.cores:.2f}")
        console.print(use)
    end = figures.hops[-1]
    console.print(
        f"end to end at {figures.rate:,.0f}/s: {_against_target(end.p50_ms, end.p99_ms)}; "
        f"positions read every {POLL_MS} ms"
        + (f"; {figures.unfinished} samples never arrived" if figures.unfinished else "")
        + (
            f"; {figures.eventless} sampled messages made no event (timed to the event store only)"
            if figures.eventless
            else ""
        )
    )


def medians_of(runs: list[LatencyFigures]) -> dict[str, float]:
    """The median over `runs` of each figure the summary shows: a run of 30 s on a machine of
    two noisy cores varies by half between runs, so one run decides nothing."""
    hops = {h.name: i for i, h in enumerate(runs[0].hops)}
    figures: dict[str, float] = {
        "rate_per_second": statistics.median(r.rate for r in runs),
        "pipeline_max_per_second": statistics.median(r.pipeline_rate for r in runs),
        "machine_cores_busy": statistics.median(r.machine_cores_busy for r in runs),
    }
    for name, index in hops.items():
        figures[f"{name} p50_ms"] = statistics.median(r.hops[index].p50_ms for r in runs)
        figures[f"{name} p99_ms"] = statistics.median(r.hops[index].p99_ms for r in runs)
    return figures


def print_latency_runs(console: Console, runs: list[LatencyFigures]) -> None:
    """One line per run (each printed whole before) and their medians, judged by the target."""
    table = Table(title=f"ledger bench latency: {len(runs)} runs, p50 / p99 ms")
    columns = ["run", "steady/s (max)", *(h.name for h in runs[0].hops), "cores busy"]
    for column in columns:
        table.add_column(column, justify="left" if column == "run" else "right")
    for n, run in enumerate(runs, 1):
        table.add_row(
            str(n),
            f"{run.rate:,.0f} ({run.pipeline_rate:,.0f})",
            *(f"{h.p50_ms:.0f} / {h.p99_ms:.0f}" for h in run.hops),
            f"{run.machine_cores_busy:.2f}",
        )
    middle = medians_of(runs)
    table.add_row(
        "median",
        f"{middle['rate_per_second']:,.0f} ({middle['pipeline_max_per_second']:,.0f})",
        *(
            f"{middle[f'{h.name} p50_ms']:.0f} / {middle[f'{h.name} p99_ms']:.0f}"
            for h in runs[0].hops
        ),
        f"{middle['machine_cores_busy']:.2f}",
        style="bold",
    )
    console.print(table)
    end = runs[0].hops[-1].name
    p50, p99 = middle[f"{end} p50_ms"], middle[f"{end} p99_ms"]
    console.print(f"end to end, medians of {len(runs)} runs: {_against_target(p50, p99)}")


def _against_target(p50_ms: float, p99_ms: float) -> str:
    """The end-to-end figures beside the targets, and whether both hold."""
    met = p50_ms <= TARGET_P50_MS and p99_ms <= TARGET_P99_MS
    return (
        f"p50 {p50_ms:.0f} ms (target ≤ {TARGET_P50_MS:.0f}), p99 {p99_ms:.0f} ms "
        f"(≤ {TARGET_P99_MS:.0f}): {'met' if met else 'NOT met'}"
    )
