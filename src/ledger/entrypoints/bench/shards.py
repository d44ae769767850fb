"""`ledger bench shards`: the intake over 1, 2 and 4 shards of the event store, on this machine.

Each layout gets the same messages on a fresh topic of 12 partitions (a multiple of 1, 2 and 4)
and a fresh database per shard, spread over the embedded servers the stack runs (`ledger stack
up --shards N`; with one server, every shard's database is on it). The intake runs in
`--processes` processes, all in the group before the clock starts, until every shard has applied
every partition. Beside its rate, the kernel's accounting says what it cost: the cores the
intake's processes, PostgreSQL and the broker kept busy, and so the CPU each command took; and,
in the same run, kafka-python consuming the same messages (the ceiling Kafka sets).

What a two-core machine can show: how the cost of a command changes with the shards (more
transactions per batch, the catalog applied in every shard, each shard's positions). What it
cannot: the gain of servers of their own, since here every shard shares the same two cores;
`docs/capacity.md` says how the figures are read.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from ledger.broker import OutRecord, Producer
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import (
    Scratch,
    deleting_topics,
    raw_kafka,
    run_worker_processes,
    scratch,
)
from ledger.entrypoints.bench.cpu import CpuWindow
from ledger.entrypoints.bench.intake import bench_messages
from ledger.entrypoints.bench.projections import run_projections_bench
from ledger.entrypoints.capacity import Measured
from ledger.outbound import Relayed, subject_of, to_record
from ledger.settings import Services, Settings
from ledger.sharding import slowest
from ledger.stack import kafka

#: Partitions of the benchmark's topics: shared evenly by 1, 2, 3, 4 or 6 shards.
PARTITIONS = 12
BENCH_ITSELF = "intake processes (and this benchmark)"


@dataclass
class ShardRun:
    """One layout's run."""

    shards: int
    processes: int
    commands: int
    seconds: float
    commands_per_second: float
    #: Cores kept busy while the intake worked, by part, and the machine's in all.
    cores: dict[str, float] = field(default_factory=dict)
    machine_cores: float = 0.0
    #: CPU milliseconds per 1,000 commands: the intake's processes, PostgreSQL, both.
    cpu_ms_per_1000: dict[str, float] = field(default_factory=dict)
    events: int = 0
    #: The event store's size on disk (table and indexes) per stored event.
    store_bytes_per_event: float = 0.0
    #: kafka-python consuming the same messages, doing nothing with them, in this run.
    raw_kafka_per_second: float = 0.0
    #: An inbound message's key, value and headers, and what the broker's log holds per
    #: message (its batches' framing included; None unless the broker is the local one).
    message_payload_bytes: float = 0.0
    kafka_bytes_per_message: float | None = None
    #: An event's record as the relay would publish it (key, value, headers).
    event_payload_bytes: float = 0.0
    #: The broker's log written per second while the messages were published (`acks=all`;
    #: the payload sent a second when the broker is not the local one).
    produce_bytes_per_second: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def topic_bytes(state_dir: Path, topic: str) -> int | None:
    """Bytes of the topic's log segments on the local broker's disk (every node's, divided by
    the nodes: one copy), or None when the broker is not the local one."""
    found = [
        path
        for node in kafka.nodes(state_dir)
        for path in (node.directory / "data").glob(f"{topic}-*")
        if path.is_dir()
    ]
    if not found:
        return None
    total = sum(f.stat().st_size for d in found for f in d.glob("*.log"))
    return total // len(kafka.nodes(state_dir))


def _record_bytes(record: OutRecord) -> int:
    headers = sum(len(k) + len(v or b"") for k, v in record.headers)
    return len(record.key or b"") + len(record.value or b"") + headers


def _event_record_bytes(own: Scratch, sample: int = 2000) -> float:
    """The mean size of an event's record on `ledger.events` (key, value, headers), from the
    first shard's stored events as the relay would publish them."""
    ledger = bootstrap.open_ledger(own.services)
    try:
        page = ledger.ledger_recorder.select_notifications(start=1, limit=sample)
        sizes = []
        for notification in page:
            event = ledger.mapper.to_domain_event(notification)
            record = to_record(
                own.settings.events_topic, event, subject_of(event), Relayed(notification.id, 0)
            )
            sizes.append(_record_bytes(record))
    finally:
        ledger.close()
    return sum(sizes) / max(len(sizes), 1)


def _done(own: Scratch) -> Callable[[], int]:
    """Messages applied: each partition as far as the shard furthest behind on it."""

    def done() -> int:
        positions = []
        for shard in range(len(own.services.shard_urls)):
            with bootstrap.connect(own.services, shard=shard) as conn:
                positions.append(
                    dict(
                        conn.execute(
                            "SELECT partition, next_offset FROM ledger_intake_positions"
                            " WHERE topic = %s",
                            (own.settings.intake_topic,),
                        ).fetchall()
                    )
                )
        return sum(slowest(positions, range(own.settings.partitions)).values())

    return done


def _store_size(own: Scratch) -> tuple[int, int]:
    """Events stored in every shard (catalog copies included) and their bytes on disk."""
    events = size = 0
    for url in own.services.shard_urls:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*), pg_total_relation_size('ledger_events') FROM ledger_events"
            ).fetchone()
        if row is not None:
            events += int(row[0])
            size += int(row[1])
    return events, size


def one_layout(
    base: Settings,
    services: Services,
    shards: int,
    processes: int,
    messages: int,
    learners: int,
    progress: Callable[[int], None],
) -> ShardRun:
    """The messages through the intake over `shards` shards (see the module docstring)."""
    prefix = f"bench-{secrets.token_hex(3)}."
    settings = base.model_copy(update={"partitions": PARTITIONS})
    with (
        deleting_topics(services, prefix),
        scratch(settings, services, prefix, shards=shards) as own,
    ):
        bootstrap.prepare_topics(own.settings, own.services)
        records = bench_messages(own.settings.intake_topic, messages, learners)
        producer = Producer(services.kafka_bootstrap, client_id="ledger-bench")
        try:
            producer.send_all(records[:1])
            sent = time.perf_counter()
            producer.send_all(records[1:], timeout_s=300)
            sent = time.perf_counter() - sent
        finally:
            producer.close()
        on_disk = topic_bytes(base.state_path, own.settings.intake_topic)
        kafka = raw_kafka(services.kafka_bootstrap, own.settings.intake_topic, len(records))
        window = CpuWindow({BENCH_ITSELF: os.getpid()})

        def finish() -> None:  # while the workers and their database sessions still exist
            window.stop()

        seconds, done = run_worker_processes(
            own,
            "intake",
            processes,
            _done(own),
            len(records),
            progress,
            on_start=window.start,
            on_finish=finish,
        )
        uses, machine = window.uses, window.machine
        events, size = _store_size(own)
        event_payload = _event_record_bytes(own)
    cores = {use.name: round(use.cores, 3) for use in uses}
    payload = sum(_record_bytes(r) for r in records)
    intake_cores = cores.get(BENCH_ITSELF, 0.0)
    postgres_cores = cores.get("PostgreSQL (every process)", 0.0)
    per_1000 = 1000 * 1000 * seconds / max(done, 1)  # ms of wall time per 1,000 commands
    return ShardRun(
        shards=shards,
        processes=processes,
        commands=done,
        seconds=round(seconds, 3),
        commands_per_second=round(done / seconds, 1),
        cores=cores,
        machine_cores=round(machine, 3),
        cpu_ms_per_1000={
            "intake": round(intake_cores * per_1000, 1),
            "postgres": round(postgres_cores * per_1000, 1),
            "both": round((intake_cores + postgres_cores) * per_1000, 1),
        },
        events=events,
        store_bytes_per_event=round(size / max(events, 1), 1),
        raw_kafka_per_second=round(kafka.per_second, 1),
        message_payload_bytes=round(payload / len(records), 1),
        kafka_bytes_per_message=round(on_disk / len(records), 1) if on_disk else None,
        event_payload_bytes=round(event_payload, 1),
        # What the broker wrote a second; with a broker elsewhere, the payload sent a second.
        produce_bytes_per_second=round((on_disk or payload) / max(sent, 1e-9), 1),
    )


def run_shards_bench(
    base: Settings,
    services: Services,
    layouts: list[int],
    processes: int,
    messages: int,
    learners: int,
    console: Console,
) -> tuple[list[ShardRun], float]:
    """Each layout once, in the order given; then one projection process's rate over events
    arriving as production's do (interleaved), for the capacity model."""
    runs = []
    for shards in layouts:
        console.print(
            f"{shards} shard(s): {messages:,} messages for {learners:,} learners, "
            f"{processes} intake process(es), {PARTITIONS} partitions"
        )
        runs.append(
            one_layout(base, services, shards, processes, messages, learners, lambda _: None)
        )
    console.print("one projection process, for the capacity model")
    one_shard = services.with_database(services.database_url)  # the read side is on one
    projections = run_projections_bench(
        base, one_shard, messages, learners, 1, 1, console, interleaved=True
    )
    return runs, projections.figures[-1].per_second


def capacity_inputs(runs: list[ShardRun], projection_events_per_second: float) -> Measured:
    """The capacity model's measured inputs, from the one-shard run (the rate one shard's
    server gives when it has the machine to itself) and a projection process's rate."""
    one = next((r for r in runs if r.shards == 1), runs[0])
    ratio = (one.kafka_bytes_per_message or one.message_payload_bytes) / max(
        one.message_payload_bytes, 1.0
    )
    return Measured(
        shard_commands_per_second=one.commands_per_second,
        events_per_command=one.events / max(one.commands, 1),
        projection_events_per_second=projection_events_per_second,
        store_bytes_per_event=one.store_bytes_per_event,
        kafka_bytes_per_message=one.kafka_bytes_per_message or one.message_payload_bytes,
        # An event's record framed as the broker framed the messages of the same run.
        kafka_bytes_per_event=one.event_payload_bytes * ratio,
        broker_bytes_per_second=one.produce_bytes_per_second,
    )
