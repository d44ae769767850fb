"""Where the intake's and the relay's time goes, measured with timers rather than a profiler.

cProfile charges every Python call, so code made of many small calls (the rules, kafka-python's
record writer) looks three times slower under it than it is: its shares misled us once
(`docs/performance.md`). Here each part is wrapped in a timer (about a microsecond a call) and
the worker runs in this process on the running stack, in a database and topics of its own:

    .venv/bin/python scripts/time_parts.py [--messages N] [--log-level info]

It publishes `bench_messages` (the intake benchmark's mix), times one intake worker through
them part by part, then times the relay's parts publishing what the intake stored.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from uuid import UUID

import commands.intake as intake_module
from commands.intake import IntakeWorker
from ledger.application import Ledger, LedgerSession
from ledger.broker import Consumer, Producer, _sendable
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import Scratch, scratch
from ledger.entrypoints.bench.intake import bench_messages
from ledger.logs import configure_logging
from ledger.outbound import Relayed, to_record
from ledger.relay import EVENTS_STREAM, Relay
from ledger.settings import Settings
from ledger.store import LedgerRecorder

spent: dict[str, float] = defaultdict(float)


def _timed(owner: Any, name: str, label: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - started

    setattr(owner, name, wrapper)


def _report(title: str, items: int, total: float, unit: str) -> None:
    print(f"{title}: {items:,} {unit}s in {total:.2f} s = {items / total:,.0f}/s")
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(
            f"  {label:24} {seconds:6.2f} s {seconds / total:5.0%}"
            f" {seconds / items * 1e6:7.1f} µs/{unit}"
        )
    print(f"  {'(the rest)':24} {total - sum(spent.values()):6.2f} s")


def time_intake(own: Scratch, ledger: Ledger, messages: int) -> None:
    settings = own.settings
    worker = IntakeWorker(ledger, settings, own.services.kafka_bootstrap, settings.intake_batch)
    recorder = ledger.ledger_recorder
    while not worker.step():  # joins the group; the first batch is not timed
        pass
    for owner, name, label in (
        (Consumer, "poll", "Kafka poll"),
        (Consumer, "commit", "Kafka offset commit"),
        (intake_module, "parse", "parse (pydantic)"),
        (IntakeWorker, "_decide", "decide (the rules)"),
        (LedgerSession, "commit", "store (one commit)"),
        (LedgerSession, "prefetch", "prefetch learners"),
        (LedgerRecorder, "accepted_digests", "accepted ids"),
        (IntakeWorker, "_log", "log lines"),
    ):
        _timed(owner, name, label)
    spent.clear()
    before = sum(recorder.intake_positions(settings.intake_topic).values())
    started = time.perf_counter()
    while sum(recorder.intake_positions(settings.intake_topic).values()) < messages:
        worker.step()
    _report("intake", messages - before, time.perf_counter() - started, "message")
    worker.close()


def time_relay(own: Scratch, ledger: Ledger) -> None:
    """The relay's step re-enacted page by page, a timer around each part."""
    spent.clear()
    relay = Relay(ledger, own.settings, own.services.kafka_bootstrap)
    producer = relay._producer_or_connect()._producer
    recorder = ledger.ledger_recorder
    position = events = 0
    started = time.perf_counter()
    while True:
        at = time.perf_counter()
        page = recorder.select_notifications(start=position + 1, limit=1000)
        spent["read a page"] += time.perf_counter() - at
        if not page:
            break
        records = []
        for notification in page:
            at = time.perf_counter()
            event = ledger.mapper.to_domain_event(notification)
            subject = relay._subject(UUID(str(notification.originator_id)), event)
            spent["decode stored events"] += time.perf_counter() - at
            at = time.perf_counter()
            relayed = Relayed(notification.id, position)
            records.append(to_record(own.settings.events_topic, event, subject, relayed))
            spent["to_record (contract)"] += time.perf_counter() - at
        at = time.perf_counter()
        futures = [
            producer.send(r.topic, key=r.key, value=r.value, headers=_sendable(r.headers))
            for r in records
        ]
        spent["KafkaProducer.send"] += time.perf_counter() - at
        at = time.perf_counter()
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=0)
        spent["wait for acks"] += time.perf_counter() - at
        at = time.perf_counter()
        recorder.save_relay_position(EVENTS_STREAM, page[-1].id)
        spent["save position"] += time.perf_counter() - at
        position, events = page[-1].id, events + len(page)
    _report("relay", events, time.perf_counter() - started, "event")
    relay.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    base = Settings()
    configure_logging("json", args.log_level)
    with scratch(base, bootstrap.services(base), f"parts-{secrets.token_hex(3)}.") as own:
        bootstrap.prepare_topics(own.settings, own.services)
        records = bench_messages(own.settings.intake_topic, args.messages, args.messages // 10)
        producer = Producer(own.services.kafka_bootstrap, "time-parts")
        try:
            producer.send_all(records, timeout_s=300)
        finally:
            producer.close()
        ledger = bootstrap.open_ledger(own.services)
        try:
            time_intake(own, ledger, len(records))
            time_relay(own, ledger)
        finally:
            ledger.close()


if __name__ == "__main__":
    main()
