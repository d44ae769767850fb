"""The intake on real Kafka and PostgreSQL: exactly once, nothing dropped, crash-safe."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

from ledger.domain import learner_aggregate_id
from ledger.settings import Settings

from .helpers import (
    Publisher,
    cli_env,
    open_ledger,
    read_topic,
    services_of,
    specialization_stored,
    wait_for,
)
from .intake_load import build_load, expected_histories, history_of, interleave

pytestmark = pytest.mark.integration


def stored_histories(settings: Settings, learner_ids: list[str]) -> dict[str, list]:
    ledger = open_ledger(settings)
    try:
        return {lid: history_of(ledger, learner_aggregate_id(lid)) for lid in learner_ids}
    finally:
        ledger.close()


def intake_position_total(settings: Settings) -> int:
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(next_offset), 0) FROM ledger_intake_positions WHERE topic = %s",
            (settings.intake_topic,),
        ).fetchone()
    return int(row[0]) if row else 0


def start_intake(
    settings: Settings, log: Path, batch: int = 2000, processes: int = 1
) -> subprocess.Popen[bytes]:
    ledger = Path(sys.executable).with_name("ledger")
    return subprocess.Popen(
        [str(ledger), "run", "intake", "--processes", str(processes)],
        env={**cli_env(settings), "LEDGER_INTAKE_BATCH": str(batch)},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def rejection_reasons(settings: Settings) -> collections.Counter[str]:
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT reason FROM ledger_rejections").fetchall()
    return collections.Counter(r[0] for r in rows)


def test_valid_messages_apply_once_and_bad_ones_are_kept_with_their_reason(
    settings: Settings,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    run = f"load{os.getpid()}"
    load = build_load(settings.intake_topic, run, learners=100, per_learner=10, bad=100)
    assert len(load.valid) == 1000
    expected = expected_histories(load)
    before = sum(rejection_reasons(settings).values())
    process = start_intake(settings, tmp_path / "intake.log")
    try:
        publisher.send(*load.catalog)
        wait_for(lambda: specialization_stored(settings, "jhu-data-science"), 60, "the catalog")
        records = interleave(load.valid, load.bad)
        publisher.send(*records)
        total = intake_position_total(settings)
        wait_for(
            lambda: sum(rejection_reasons(settings).values()) >= before + 100, 120, "100 rejections"
        )
        wait_for(
            lambda: stored_histories(settings, list(expected)) == expected,
            120,
            "every valid message's effects",
        )
        assert intake_position_total(settings) >= total
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    expected_reasons = collections.Counter(reason for _, reason in load.bad)
    reasons = rejection_reasons(settings)
    for reason, count in expected_reasons.items():
        assert reasons[reason] >= count, (reason, reasons)
    assert stored_histories(settings, list(expected)) == expected
    # ... and the relay would publish them: run it once and count the rejections topic.
    ledger = Path(sys.executable).with_name("ledger")
    relay = subprocess.Popen(
        [str(ledger), "run", "relay"],
        env=cli_env(settings),
        stdout=(tmp_path / "relay.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        on_topic = read_topic(
            settings, settings.rejections_topic, expect=sum(reasons.values()), timeout_s=60
        )
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(60)
    assert len(on_topic) >= sum(expected_reasons.values())
    kept = collections.Counter(r.header("ledger_reason") for r in on_topic)
    for reason, count in expected_reasons.items():
        assert kept[reason] >= count


def log_lines(log: Path, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def test_two_intake_processes_share_the_partitions_and_stop_together(
    settings: Settings,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    run = f"two{os.getpid()}"
    load = build_load(settings.intake_topic, run, learners=120, per_learner=10, bad=0, seed=5)
    expected = expected_histories(load)
    log = tmp_path / "intake.log"
    process = start_intake(settings, log, batch=100, processes=2)

    def assignments() -> dict[int, list[int]]:
        """Each process's latest assignment."""
        latest: dict[int, list[int]] = {}
        for line in log_lines(log, "intake.positions"):
            latest[line["pid"]] = line["assigned"]
        return latest

    try:
        wait_for(
            lambda: len(assignments()) == 2 and all(assignments().values()),
            90,
            "both processes in the consumer group",
        )
        latest = assignments()
        assert sorted(p for ps in latest.values() for p in ps) == list(range(settings.partitions))
        publisher.send(*load.catalog)
        wait_for(lambda: specialization_stored(settings, "jhu-data-science"), 60, "the catalog")
        publisher.send(*load.valid)
        wait_for(lambda: stored_histories(settings, list(expected)) == expected, 120, "the load")
        handled = collections.Counter(line["pid"] for line in log_lines(log, "intake.message"))
        assert len(handled) == 2, handled
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    children = [
        pid for line in log_lines(log, "runner.worker_processes") for pid in line["started"]
    ]
    assert len(children) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(children[0], 0)
    assert stored_histories(settings, list(expected)) == expected


def test_killed_mid_batch_three_times_nothing_lost_nothing_twice(
    settings: Settings,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    run = f"kill{os.getpid()}"
    load = build_load(settings.intake_topic, run, learners=300, per_learner=20, bad=0, seed=11)
    expected = expected_histories(load)
    log = tmp_path / "intake.log"
    publisher.send(*load.catalog)
    process = start_intake(settings, log, batch=200)
    wait_for(lambda: specialization_stored(settings, "jhu-data-science"), 60, "the catalog")
    start = intake_position_total(settings)
    publisher.send(*load.valid)
    kills = 0
    for quarter in (1, 2, 3):
        # Kill as soon as another quarter is committed: the worker is then deciding or
        # writing its next batch, never idle and never done.
        target = start + quarter * len(load.valid) // 4
        wait_for(
            lambda t=target: intake_position_total(settings) >= t,
            120,
            f"{quarter} quarter(s) of the load",
        )
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        kills += 1
        done = intake_position_total(settings) - start
        assert done < len(load.valid), "the intake finished before it could be killed"
        process = start_intake(settings, log, batch=200)
    try:
        wait_for(
            lambda: stored_histories(settings, list(expected)) == expected,
            180,
            "every message applied exactly once after three kills",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert kills == 3
    assert stored_histories(settings, list(expected)) == expected


def test_seeking_the_group_back_changes_nothing(
    settings: Settings,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    run = f"seek{os.getpid()}"
    load = build_load(settings.intake_topic, run, learners=60, per_learner=10, bad=0, seed=3)
    expected = expected_histories(load)
    log = tmp_path / "intake.log"
    process = start_intake(settings, log)
    try:
        publisher.send(*load.catalog)
        wait_for(lambda: specialization_stored(settings, "jhu-data-science"), 60, "the catalog")
        publisher.send(*load.valid)
        wait_for(lambda: stored_histories(settings, list(expected)) == expected, 120, "the load")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    ledger = open_ledger(settings)
    max_id = ledger.recorder.max_notification_id()
    ledger.close()

    # Move the intake group's committed offsets back over 500 handled messages.
    consumer = KafkaConsumer(
        bootstrap_servers=services_of(settings).kafka_bootstrap,
        group_id=settings.group_id("intake"),
        enable_auto_commit=False,
    )
    partitions = [
        TopicPartition(settings.intake_topic, p)
        for p in consumer.partitions_for_topic(settings.intake_topic)
    ]
    ends = consumer.end_offsets(partitions)
    moved = {}
    remaining = 500
    for tp in partitions:
        back = min(remaining, ends[tp])
        moved[tp] = OffsetAndMetadata(ends[tp] - back, "", -1)
        remaining -= back
    consumer.commit(moved)
    consumer.close()
    assert remaining == 0

    process = start_intake(settings, log)
    try:
        time.sleep(8)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    ledger = open_ledger(settings)
    try:
        assert ledger.recorder.max_notification_id() == max_id
    finally:
        ledger.close()
    assert stored_histories(settings, list(expected)) == expected


def test_binary_and_structured_mode_give_the_same_result(
    settings: Settings,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    from .scenario import at

    process = start_intake(settings, tmp_path / "intake.log")
    try:
        publisher.send(
            publisher.record(
                "ledger.specialization.published.v1",
                "jhu-data-science",
                build_load_catalog(),
                at(0),
            )
        )
        wait_for(lambda: specialization_stored(settings, "jhu-data-science"), 60, "the catalog")
        for learner, binary in ((f"bin-{os.getpid()}", True), (f"str-{os.getpid()}", False)):
            publisher.send(
                publisher.record(
                    "ledger.learner.enrolled.v1",
                    learner,
                    {
                        "learner_id": learner,
                        "specialization_id": "jhu-data-science",
                        "intent": "certificate",
                    },
                    at(1),
                    binary=binary,
                ),
                publisher.record(
                    "ledger.payment.captured.v1",
                    learner,
                    {
                        "learner_id": learner,
                        "payment_id": "p",
                        "course_id": "ds-1",
                        "amount": "49.00",
                        "currency": "USD",
                    },
                    at(2),
                    binary=binary,
                ),
                publisher.record(
                    "ledger.identity.verified.v1",
                    learner,
                    {"learner_id": learner, "method": "id", "expires_at": at(300).isoformat()},
                    at(3),
                    binary=binary,
                ),
                publisher.record(
                    "ledger.course.graded.v1",
                    learner,
                    {"learner_id": learner, "course_id": "ds-1", "grade": "0.8", "passed": True},
                    at(4),
                    binary=binary,
                ),
            )
        names = [f"bin-{os.getpid()}", f"str-{os.getpid()}"]
        histories = wait_for(
            lambda: (
                (h := stored_histories(settings, names))
                and all(len(v) == 6 for v in h.values())
                and h
            ),
            60,
            "both learners' histories",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert histories[names[0]] == histories[names[1]]


def build_load_catalog() -> dict:
    from .intake_load import PUBLISHED

    return PUBLISHED
