"""The load of a chaos run: the demo's seeded cohort, sent as platform services would send it.

The catalog goes first and is waited for (E0). Then the learners' messages are sent at a steady
pace over a window, a share of the learners through `POST /v1/events` and the rest straight onto
`ledger.intake`, each learner through one path only, in order, so every learner's history is the
same in every run (the rules judge each message against what came before it). Whatever goes
wrong, a sender tries the same messages again until they are taken: a retried message is a
duplicate the intake recognises by its (source, id), never a second effect.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import orjson
import psycopg

from ledger.broker import BrokerUnavailableError, OutRecord, Producer
from ledger.domain import specialization_aggregate_id
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import staff_headers
from ledger.entrypoints.demo.cohort import CATALOG, Cohort
from ledger.errors import LedgerError
from ledger.settings import Services

#: Messages per send while pacing: small enough to spread the load, large enough to batch.
CHUNK = 50


@dataclass
class Plan:
    """What to send, and by which path."""

    catalog: list[OutRecord]
    through_kafka: list[OutRecord]
    through_api: list[OutRecord]

    @property
    def messages(self) -> int:
        return len(self.catalog) + len(self.through_kafka) + len(self.through_api)


def plan(topic: str, learners: int, seed: int, api_share: float = 0.25) -> Plan:
    """The cohort of `learners` from `seed`, with about `api_share` of them sent over HTTP."""
    cohort = Cohort(learners, seed, topic, run_id=f"chaos{seed}")
    kafka: list[OutRecord] = []
    api: list[OutRecord] = []
    for record in cohort.learner_messages():
        key = record.key or b""
        share = int(hashlib.sha256(key).hexdigest()[:4], 16) / 0xFFFF
        # Only valid CloudEvents can go over HTTP (the API refuses others whole, and so
        # publishes nothing of them); the cohort's one malformed message goes to Kafka.
        if share < api_share and record.value and record.value.startswith(b"{") and _valid(record):
            api.append(record)
        else:
            kafka.append(record)
    return Plan(cohort.catalog(), kafka, api)


def _valid(record: OutRecord) -> bool:
    try:
        orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return False
    return True


@dataclass
class Sent:
    """How the sending went."""

    kafka: int = 0
    api: int = 0
    kafka_retries: int = 0
    api_retries: int = 0
    refused: list[str] = field(default_factory=list)
    finished_at: float = 0.0

    @property
    def total(self) -> int:
        return self.kafka + self.api


def wait_for_catalog(
    services: Services, specializations: list[str] | None = None, timeout_s: float = 120.0
) -> None:
    """Until every specialization of the catalog (the cohort's, or those named) is in the
    event store (E0): in every shard's, each keeping the catalog."""
    names = specializations or [e.specialization_id for e in CATALOG]
    ids = [specialization_aggregate_id(name) for name in names]
    deadline = time.monotonic() + timeout_s
    waiting = list(range(len(services.shard_urls)))
    while time.monotonic() < deadline:
        try:
            with bootstrap.connect(services, connect_timeout=3, shard=waiting[0]) as conn:
                row = conn.execute(
                    "SELECT count(DISTINCT originator_id) FROM ledger_events"
                    " WHERE originator_id = ANY(%s)",
                    (ids,),
                ).fetchone()
            if row is not None and row[0] == len(ids):
                waiting.pop(0)
                if not waiting:
                    return
                continue
        except psycopg.Error:
            pass
        time.sleep(0.2)
    raise LedgerError("the catalog did not reach the event store in time")


def send_to_kafka(
    services: Services,
    records: list[OutRecord],
    window_s: float,
    sent: Sent,
    stop: threading.Event,
) -> None:
    """Send `records` in order over `window_s`, again after any failure, until all are taken."""
    producer: Producer | None = None
    done = 0
    started = time.monotonic()
    try:
        while done < len(records) and not stop.is_set():
            due = _due(len(records), started, window_s)
            if due <= done:
                time.sleep(0.05)
                continue
            chunk = records[done : min(due, done + CHUNK * 4)]
            try:
                if producer is None:
                    producer = Producer(
                        services.kafka_bootstrap,
                        "chaos-load",
                        delivery_timeout_ms=120_000,
                    )
                producer.send_all(chunk, timeout_s=30)
            except BrokerUnavailableError:
                sent.kafka_retries += 1
                if producer is not None:
                    producer.close()
                    producer = None
                stop.wait(0.5)
                continue
            done += len(chunk)
            sent.kafka = done
    finally:
        if producer is not None:
            producer.close()


def send_to_api(
    base_url: str,
    headers: dict[str, str],
    records: list[OutRecord],
    window_s: float,
    sent: Sent,
    stop: threading.Event,
) -> None:
    """POST `records` as CloudEvents batches over `window_s`, again until each is accepted."""
    done = 0
    started = time.monotonic()
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        while done < len(records) and not stop.is_set():
            due = _due(len(records), started, window_s)
            if due <= done:
                time.sleep(0.05)
                continue
            chunk = records[done : min(due, done + CHUNK)]
            body = b"[" + b",".join(r.value or b"" for r in chunk) + b"]"
            try:
                response = client.post(
                    "/v1/events",
                    content=body,
                    headers={"content-type": "application/cloudevents-batch+json"},
                )
            except httpx.HTTPError:
                sent.api_retries += 1
                stop.wait(0.3)
                continue
            if response.status_code == 202:
                done += len(chunk)
                sent.api = done
            elif response.status_code == 400:
                sent.refused.append(response.text[:500])
                done += len(chunk)
            else:  # 503 while Kafka is away, 5xx while the API restarts: try again
                sent.api_retries += 1
                stop.wait(0.3)


def _due(total: int, started: float, window_s: float) -> int:
    """How many of `total` messages should be out by now, spread evenly over the window."""
    if window_s <= 0:
        return total
    return min(total, int(total * (time.monotonic() - started) / window_s) + 1)


def send(
    services: Services,
    load: Plan,
    api_url: str,
    window_s: float,
    stop: threading.Event,
    on_catalog: Callable[[], None] | None = None,
) -> Sent:
    """Send the catalog and wait for it, then both paths side by side; return once all sent."""
    sent = Sent()
    catalog_sent = Sent()
    send_to_kafka(services, load.catalog, 0, catalog_sent, stop)
    wait_for_catalog(services)
    if on_catalog is not None:
        on_catalog()
    headers = staff_headers(services, "chaos-load")
    threads = [
        threading.Thread(
            target=send_to_kafka, args=(services, load.through_kafka, window_s, sent, stop)
        ),
        threading.Thread(
            target=send_to_api,
            args=(api_url, headers, load.through_api, window_s, sent, stop),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.kafka += catalog_sent.kafka
    sent.kafka_retries += catalog_sent.kafka_retries
    sent.finished_at = time.monotonic()
    return sent
