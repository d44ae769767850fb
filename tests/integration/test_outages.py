"""`ledger run` rides out the broker and the database going away, without a restart.

These tests stop and start the services `ledger stack up` manages, so they need the embedded
ones (they skip, saying so, when the environment names its own Kafka or PostgreSQL).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ledger.settings import Settings
from ledger.stack import services
from ledger.stack.services import Service
from projections.read_models.learner_progress import LearnerProgress, learner_progress

from .helpers import (
    Publisher,
    cli_env,
    needs_embedded_services,
    services_of,
    specialization_stored,
    wait_for,
)
from .scenario import DS, PUBLISHED, at, enrolled, graded

pytestmark = pytest.mark.integration


def progress_of(settings: Settings, learner: str) -> LearnerProgress | None:
    try:
        with psycopg.connect(
            services_of(settings).database_url, autocommit=True, connect_timeout=3
        ) as conn:
            return learner_progress(conn, learner)
    except psycopg.OperationalError:
        return None


def passed_courses(settings: Settings, learner: str) -> set[str]:
    progress = progress_of(settings, learner)
    if progress is None:
        return set()
    return {c.course_id for e in progress.enrollments for c in e.courses if c.passed}


def passed_count(progress: LearnerProgress) -> int:
    return sum(1 for e in progress.enrollments for c in e.courses if c.passed)


def start_ledger_run(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    ledger = Path(sys.executable).with_name("ledger")
    log = log_path.open("wb")
    return subprocess.Popen(
        [str(ledger), "run"], env=cli_env(settings), stdout=log, stderr=subprocess.STDOUT
    )


def stop_ledger_run(process: subprocess.Popen[bytes], log_path: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"`ledger run` ignored SIGTERM; its log:\n{log_path.read_text()[-3000:]}")
    assert status == 0, f"`ledger run` exited {status}; its log:\n{log_path.read_text()[-3000:]}"


def log_events(log_path: Path) -> list[str]:
    events = []
    for line in log_path.read_text().splitlines():
        try:
            events.append(json.loads(line).get("event", ""))
        except json.JSONDecodeError:
            continue
    return events


def test_workers_recover_when_the_broker_comes_back(
    settings: Settings, publisher: Publisher, tmp_path: Path
) -> None:
    needs_embedded_services(settings, "stop")
    log_path = tmp_path / "ledger-run.log"
    process = start_ledger_run(settings, log_path)
    try:
        publisher.send(publisher.record("ledger.specialization.published.v1", DS, PUBLISHED, at(0)))
        wait_for(lambda: specialization_stored(settings, DS), 90, "the catalog")
        publisher.send(
            publisher.record("ledger.learner.enrolled.v1", "bea", enrolled("bea"), at(1)),
            publisher.record("ledger.course.graded.v1", "bea", graded("bea", "ds-1"), at(2)),
        )
        wait_for(lambda: "ds-1" in passed_courses(settings, "bea"), 90, "the first grade")

        services.down(settings, Service.KAFKA)
        time.sleep(3)  # the workers are now polling a broker that is gone
        # Published while the broker is down: the producer holds it until the broker is back.
        during = publisher.record("ledger.course.graded.v1", "bea", graded("bea", "ds-2"), at(3))
        sender = threading.Thread(
            target=publisher.send, args=(during,), kwargs={"timeout_s": 150.0}
        )
        sender.start()
        time.sleep(2)
        services.up(settings, Service.KAFKA)
        sender.join(180)
        assert not sender.is_alive()

        wait_for(
            lambda: "ds-2" in passed_courses(settings, "bea"),
            120,
            "the grade published while the broker was down",
        )
        publisher.send(
            publisher.record("ledger.course.graded.v1", "bea", graded("bea", "ds-3"), at(4))
        )
        wait_for(
            lambda: "ds-3" in passed_courses(settings, "bea"),
            60,
            "a grade published after the broker came back",
        )
        assert process.poll() is None, "`ledger run` died during the outage"
    finally:
        services.up(settings, Service.KAFKA)
        stop_ledger_run(process, log_path)
    progress = progress_of(settings, "bea")
    assert progress is not None
    assert passed_count(progress) == 3


def test_workers_recover_when_the_database_comes_back(
    settings: Settings, publisher: Publisher, tmp_path: Path
) -> None:
    needs_embedded_services(settings, "stop")
    base = settings.model_copy(update={"database_url": None})  # the embedded server itself
    log_path = tmp_path / "ledger-run.log"
    process = start_ledger_run(settings, log_path)
    try:
        publisher.send(publisher.record("ledger.specialization.published.v1", DS, PUBLISHED, at(0)))
        wait_for(lambda: specialization_stored(settings, DS), 90, "the catalog")
        publisher.send(
            publisher.record("ledger.learner.enrolled.v1", "cyd", enrolled("cyd"), at(1))
        )
        wait_for(lambda: progress_of(settings, "cyd"), 90, "cyd's enrollment")

        services.down(base, Service.POSTGRES)
        publisher.send(
            publisher.record("ledger.course.graded.v1", "cyd", graded("cyd", "ds-5"), at(5))
        )
        time.sleep(4)  # the intake now fails to store, and must not lose the message
        services.up(base, Service.POSTGRES)

        wait_for(
            lambda: "ds-5" in passed_courses(settings, "cyd"),
            120,
            "the grade published while the database was down",
        )
        assert process.poll() is None, "`ledger run` died during the outage"
    finally:
        services.up(base, Service.POSTGRES)
        stop_ledger_run(process, log_path)
    assert "worker.outage" in log_events(log_path)
    assert "worker.recovered" in log_events(log_path)


def test_stack_up_after_the_postmaster_was_killed_waits_for_crash_recovery(
    settings: Settings,
) -> None:
    """`kill -9` of the embedded PostgreSQL while a writer commits, then two `ledger stack up
    postgres` at once (a supervisor and an operator): one starts the server, the other finds
    it replaying its log. That one used to return at once and fail on its first connection;
    now both wait until the server is ready, and nothing committed is lost."""
    needs_embedded_services(settings, "kill")
    import os

    from ledger.stack import postgres

    url = services_of(settings).database_url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS crash_probe (n int PRIMARY KEY, pad text)")
    committed: list[int] = []
    stop = threading.Event()

    def write() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                n = 0
                while not stop.is_set():
                    n += 1
                    conn.execute(
                        "INSERT INTO crash_probe VALUES (%s, repeat(md5(%s::text), 2000))", (n, n)
                    )
                    committed.append(n)
        except psycopg.Error:
            return  # the server went away under it, as intended

    writer = threading.Thread(target=write)
    writer.start()
    wait_for(lambda: len(committed) > 3000, 60, "the writer to commit a log worth replaying")
    postmaster = postgres.read_postmaster(settings.state_path)
    assert postmaster is not None
    os.kill(postmaster.pid, signal.SIGKILL)
    stop.set()
    writer.join(30)
    env = {**cli_env(settings), "LEDGER_DATABASE_URL": ""}
    ledger = Path(sys.executable).with_name("ledger")
    started = time.monotonic()
    ups = [
        subprocess.Popen(
            [str(ledger), "stack", "up", "postgres"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    ]
    time.sleep(0.5)
    ups.append(
        subprocess.Popen(
            [str(ledger), "stack", "up", "postgres"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    )
    for up in ups:
        output, _ = up.communicate(timeout=300)
        assert up.returncode == 0, output.decode(errors="replace")[-3000:]
    assert time.monotonic() - started < 300
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM crash_probe").fetchone()
        conn.execute("DROP TABLE crash_probe")
    assert row is not None
    assert row[0] >= len(committed)
