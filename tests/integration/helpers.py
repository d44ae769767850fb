"""What integration tests import: the services this run uses, a fresh database and topics, the
`ledger` CLI as a subprocess, waiting, publishing and reading topics.

Fixtures live in `conftest.py`; test modules import from here (and from `tests.scenarios`),
never from a conftest.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from commands.cloudevents import structured
from ledger.application import Ledger
from ledger.broker import OutRecord, Producer, Record
from ledger.entrypoints import bootstrap
from ledger.entrypoints.staff import tokens
from ledger.entrypoints.staff.roles import Role
from ledger.relay import EVENTS_STREAM, PAGE, Relay
from ledger.settings import Services, Settings
from projections import generations
from projections.catalog import READ_MODELS
from projections.rebuild import table_dump
from projections.status import projection_lag
from projections.worker import ProjectionWorker

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


def services_of(settings: Settings) -> Services:
    """Where this test's PostgreSQL (its own database) and Kafka are."""
    return bootstrap.services(settings)


def open_ledger(settings: Settings) -> Ledger:
    return bootstrap.open_ledger(services_of(settings))


def needs_embedded_services(settings: Settings, why: str) -> None:
    """For a test that stops or kills the services `ledger stack up` manages: when the
    environment names its own instead, skip on a developer's machine and fail under CI (a
    green CI run must mean the test ran)."""
    if not (Settings.from_env().database_url or settings.kafka_bootstrap):
        return
    message = f"the environment names its own services, which this test must not {why}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def fresh_settings(base_settings: Settings) -> Iterator[Settings]:
    """Settings naming a new database and new topics on the running services (dropped after)."""
    run = secrets.token_hex(4)
    database = f"ledger_test_{run}"
    admin = services_of(base_settings)
    with bootstrap.connect(admin) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    test_settings = base_settings.model_copy(
        update={
            "database_url": make_conninfo(admin.database_url, dbname=database),
            "topic_prefix": f"test-{run}.",
        }
    )
    try:
        found = services_of(test_settings)
        bootstrap.prepare_database(found)
        bootstrap.prepare_topics(test_settings, found)
        yield test_settings
    finally:
        with bootstrap.connect(admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment under which a `ledger` subprocess sees the test's database and topics."""
    env = dict(os.environ)
    env.update(
        {
            "LEDGER_STATE_DIR": str(settings.state_path),
            "LEDGER_DATABASE_URL": settings.database_url or "",
            "LEDGER_TOPIC_PREFIX": settings.topic_prefix,
            "LEDGER_LOG_FORMAT": "json",
        }
    )
    if settings.kafka_bootstrap:
        env["LEDGER_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    if settings.shards:
        env["LEDGER_SHARDS"] = settings.shards
    return env


def ledger_cli(
    settings: Settings,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """`ledger ARGS` in a subprocess on the test's database and topics (benchmarks give a
    longer `timeout`)."""
    ledger = Path(sys.executable).with_name("ledger")
    return subprocess.run(
        [str(ledger), *args],
        env=env or cli_env(settings),
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_api(settings: Settings, log: Path, **env: str) -> Iterator[str]:
    """`ledger run api` on a free port, as production runs it (with `env` added to its
    environment); yields its base URL once `/healthz` answers, stops it after."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ledger = Path(sys.executable).with_name("ledger")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ledger), "run", "api"],
            # The issuer's address is where this API answers: credentials point back to it.
            env={
                **cli_env(settings),
                "LEDGER_API_PORT": str(port),
                "LEDGER_ISSUER_URL": base,
                **env,
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, f"the API on port {port} (log: {log})")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


@contextmanager
def running_pipeline(settings: Settings, log: Path) -> Iterator[Path]:
    """`ledger run` (intake, relay, projections) in a process of its own, as in production;
    yields its log's path."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("ledger")), "run"],
            env=cli_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def caught_up(settings: Settings) -> bool:
    """Whether intake, relay and projections have each handled everything sent so far."""
    from ledger.entrypoints.lag import pipeline_lag

    ledger = open_ledger(settings)
    try:
        return all(s.behind == 0 for s in pipeline_lag(settings, services_of(settings), ledger))
    finally:
        ledger.close()


def staff_token(settings: Settings, name: str, *roles: Role) -> str:
    """A live staff token (`ledger tokens create`, in the test's database) holding `roles`
    (every role if none is named)."""
    with bootstrap.connect(services_of(settings)) as conn:
        issued = tokens.issue(conn, name, frozenset(roles or Role), None)
    return issued.secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(probe: Callable[[], T | None], timeout_s: float = 60.0, what: str = "") -> T:
    """Poll until `probe` returns something truthy; fail naming `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


class Publisher:
    """Publishes CloudEvents onto the test's intake topic, numbering their ids."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = Producer(
            services_of(settings).kafka_bootstrap, "test-publisher", delivery_timeout_ms=120_000
        )
        self.count = 0
        self.prefix = f"test-{secrets.token_hex(3)}"

    def record(
        self,
        event_type: str,
        subject: str,
        data: dict[str, Any],
        at: datetime,
        *,
        message_id: str | None = None,
        binary: bool = False,
    ) -> OutRecord:
        self.count += 1
        message_id = message_id or f"{self.prefix}-{self.count}"
        topic = self.settings.intake_topic
        if not binary:
            value = structured(event_type, "urn:test", message_id, at, subject, data)
            return OutRecord(
                topic, subject.encode(), value, [("content-type", b"application/cloudevents+json")]
            )
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", message_id.encode()),
            ("ce_source", b"urn:test"),
            ("ce_type", event_type.encode()),
            ("ce_time", at.isoformat().encode()),
            ("ce_subject", subject.encode()),
            ("content-type", b"application/json"),
        ]
        return OutRecord(topic, subject.encode(), json.dumps(data).encode(), headers)

    def send(self, *records: OutRecord, timeout_s: float = 30.0) -> None:
        self.producer.send_all(list(records), timeout_s=timeout_s)

    def close(self) -> None:
        self.producer.close()


def read_topic(
    settings: Settings, topic: str, expect: int, timeout_s: float = 30.0
) -> list[Record]:
    """Every record of `topic` from the beginning, once at least `expect` have arrived."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=services_of(settings).kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(records) < expect:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(
                    Record(r.topic, r.partition, r.offset, r.key, r.value, list(r.headers or []))
                    for r in batch
                )
    finally:
        consumer.close()
    return records


def specialization_stored(settings: Settings, specialization_id: str) -> bool:
    """True once the intake has stored the specialization (E0: publish the catalog, then wait)."""
    from ledger.domain import specialization_aggregate_id

    try:
        with psycopg.connect(
            services_of(settings).database_url, autocommit=True, connect_timeout=3
        ) as conn:
            row = conn.execute(
                "SELECT 1 FROM ledger_events WHERE originator_id = %s",
                (specialization_aggregate_id(specialization_id),),
            ).fetchone()
    except psycopg.OperationalError:
        return False
    return row is not None


# Run the relay and the projection worker in-process until they have caught up.


def relay_all(settings: Settings, page: int = PAGE) -> None:
    """Run the relay, `page` events at a time, until everything stored is on `ledger.events`."""
    ledger = open_ledger(settings)
    relay = Relay(ledger, settings, services_of(settings).kafka_bootstrap, batch_size=page)
    try:
        end = ledger.recorder.max_notification_id()
        wait_for(
            lambda: (
                relay.step() is not None
                and ledger.ledger_recorder.relay_position(EVENTS_STREAM) >= (end or 0)
            ),
            60,
            "the relay",
        )
    finally:
        relay.close()
        ledger.close()


def projected_to_the_end(settings: Settings) -> bool:
    """Whether every read model has applied all of a non-empty `ledger.events`."""
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        lags = projection_lag(conn, services_of(settings).kafka_bootstrap, settings.events_topic)
    return sum(lag.end for lag in lags) > 0 and all(lag.behind == 0 for lag in lags)


def project_all(settings: Settings, max_batch: int = 5000) -> None:
    """Run the projection worker until every read model is at the end of `ledger.events`."""
    worker = ProjectionWorker(
        settings,
        services_of(settings).database_url,
        services_of(settings).kafka_bootstrap,
        max_batch=max_batch,
    )

    def caught_up() -> bool:
        worker.step()
        return projected_to_the_end(settings)

    try:
        wait_for(caught_up, 90, "the projections")
    finally:
        worker.close()


def dumps(settings: Settings) -> dict[str, Any]:
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        result = {}
        for model in READ_MODELS:
            with conn.cursor() as cur:
                schema = generations.live_schema(cur, model.name)
            result[model.name] = table_dump(conn, schema, model)
        return result


def scenario_projected(settings: Settings) -> Settings:
    """The read scenario (tests/read_scenario.py) stored, relayed and projected."""
    from .. import read_scenario

    ledger = open_ledger(settings)
    try:
        read_scenario.build(ledger)
    finally:
        ledger.close()
    relay_all(settings)
    project_all(settings)
    return settings
