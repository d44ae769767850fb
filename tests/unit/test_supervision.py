"""Workers ride out outages and failures, and notice when their consumer stops making progress.

No services: a scripted worker stands for intake, relay or projections, and a scripted consumer
for kafka-python's; the log lines are captured as structlog writes them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import structlog

from ledger.broker import BrokerUnavailableError
from ledger.heartbeats import Progress
from ledger.liveness import ConsumerWatch
from ledger.supervision import run_worker


@dataclass
class ScriptedWorker:
    """Raises what its script says, step by step; then stops the loop."""

    script: list[BaseException | None]
    stop: threading.Event
    name: str = "scripted"
    steps: int = 0
    recovers: int = 0
    closed: bool = False

    def step(self) -> bool:
        if self.steps >= len(self.script):
            self.stop.set()
            return False
        outcome = self.script[self.steps]
        self.steps += 1
        if outcome is not None:
            raise outcome
        return True

    def recover(self) -> None:
        self.recovers += 1

    def progress(self) -> Progress:
        return Progress(0.0)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def log_events() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


def names(captured: list[dict[str, Any]]) -> list[str]:
    """The worker's lines an operator sees (info and above)."""
    return [
        e["event"]
        for e in captured
        if e["event"].startswith("worker.") and e.get("log_level") != "debug"
    ]


def run(script: list[BaseException | None]) -> ScriptedWorker:
    stop = threading.Event()
    worker = ScriptedWorker(script, stop)
    thread = threading.Thread(
        target=run_worker, args=(worker, stop), kwargs={"max_backoff_s": 0.01}
    )
    # Failures wait at least a second before the next try: keep the scripts short.
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    return worker


def test_an_outage_is_said_once_when_it_starts_and_once_when_a_step_goes_through(
    log_events: list[dict[str, Any]],
) -> None:
    down = BrokerUnavailableError("Kafka did not answer")
    worker = run([down, psycopg.OperationalError("no database"), down, None, None])
    assert names(log_events) == [
        "worker.started",
        "worker.outage",
        "worker.recovered",
        "worker.stopped",
    ]
    assert worker.recovers == 3  # before each try after a failed one
    assert worker.closed


def test_a_bug_is_logged_with_its_traceback_and_the_worker_carries_on(
    log_events: list[dict[str, Any]],
) -> None:
    worker = run([None, RuntimeError("a bug"), None])
    events = names(log_events)
    assert events == ["worker.started", "worker.failed", "worker.resumed", "worker.stopped"]
    failed = next(e for e in log_events if e["event"] == "worker.failed")
    assert failed["failures"] == 1
    assert failed["exc_info"] is True
    assert worker.steps == 3
    assert worker.recovers == 1


@dataclass
class ScriptedConsumer:
    """What `ConsumerWatch` asks of a consumer: assignment, lag, group state."""

    assigned: list[tuple[str, int]] = field(default_factory=lambda: [("t", 0), ("t", 1)])
    waiting: int = 5
    stable: bool = True
    held: bool = False
    lag_asked: int = 0

    def assignment(self) -> list[tuple[str, int]]:
        return self.assigned

    def lag(self, partitions: list[tuple[str, int]]) -> int:
        self.lag_asked += 1
        return self.waiting

    def group_is_stable(self) -> bool:
        return self.stable

    def group_state(self) -> str:
        return "stable, coordinator 1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(clock: Clock) -> ConsumerWatch:
    return ConsumerWatch(stall_after_s=30, check_every_s=5, clock=clock, wall_clock=clock)


def test_no_records_while_records_wait_is_a_stall_after_the_bound() -> None:
    clock = Clock()
    w = watch(clock)
    consumer = ScriptedConsumer()
    for _ in range(5):  # 25 s of nothing
        clock.now += 5
        assert w.after_poll(consumer, 0) is None  # type: ignore[arg-type]
    clock.now += 6
    stall = w.after_poll(consumer, 0)  # type: ignore[arg-type]
    assert stall is not None
    assert stall.lag == 5
    assert stall.seconds_without_progress >= 30
    assert w.rejoins == 1


def test_records_received_are_progress_and_cost_no_request() -> None:
    clock = Clock()
    w = watch(clock)
    consumer = ScriptedConsumer()
    for _ in range(20):
        clock.now += 5
        assert w.after_poll(consumer, 100) is None  # type: ignore[arg-type]
    assert consumer.lag_asked == 0


def test_nothing_waiting_is_idle_not_stalled() -> None:
    clock = Clock()
    w = watch(clock)
    consumer = ScriptedConsumer(waiting=0)
    for _ in range(30):
        clock.now += 5
        assert w.after_poll(consumer, 0) is None  # type: ignore[arg-type]
    assert w.lag == 0


def test_checks_are_spaced_so_an_idle_worker_asks_the_broker_rarely() -> None:
    clock = Clock()
    w = watch(clock)
    consumer = ScriptedConsumer(waiting=0)
    for _ in range(50):  # 10 s of polls every 200 ms
        clock.now += 0.2
        w.after_poll(consumer, 0)  # type: ignore[arg-type]
    assert consumer.lag_asked == 2


def test_a_member_that_never_gets_into_a_stable_group_is_stalled_too() -> None:
    clock = Clock()
    w = watch(clock)
    consumer = ScriptedConsumer(assigned=[], stable=False)
    stalls = []
    for _ in range(8):
        clock.now += 5
        stalls.append(w.after_poll(consumer, 0))  # type: ignore[arg-type]
    assert any(s is not None for s in stalls)


def test_an_unassigned_member_of_a_stable_group_is_idle() -> None:
    clock = Clock()
    w = watch(clock)
    consumer = ScriptedConsumer(assigned=[], stable=True)
    for _ in range(20):
        clock.now += 5
        assert w.after_poll(consumer, 0) is None  # type: ignore[arg-type]


def test_a_broker_that_does_not_answer_the_lag_check_is_not_a_stall() -> None:
    class Away(ScriptedConsumer):
        def lag(self, partitions: list[tuple[str, int]]) -> int:
            raise BrokerUnavailableError("away")

    clock = Clock()
    w = watch(clock)
    for _ in range(20):
        clock.now += 5
        assert w.after_poll(Away(), 0) is None  # type: ignore[arg-type]
    assert w.lag is None


def test_closing_a_producer_with_the_broker_away_never_raises() -> None:
    """The relay closes its producer to recover from a broker outage, when records are unsent
    by definition: the close gives them 5 s, drops them and returns (a raise here used to end
    the relay). No broker listens on port 1."""
    import time

    from ledger.broker import Producer

    producer = Producer("127.0.0.1:1", "test-close", delivery_timeout_ms=60_000)
    producer._producer.produce("t", value=b"unsent")
    started = time.monotonic()
    producer.close()
    assert time.monotonic() - started < 15
    assert len(producer._producer) == 0  # nothing left queued


def test_a_zombie_postmaster_is_not_running() -> None:
    """A postmaster killed with SIGKILL stays a zombie until reaped, and a zombie answers
    kill(pid, 0): `stack up` once waited for such a one for ever."""
    import os
    import time

    from ledger.stack.postgres import _alive

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        time.sleep(0.2)  # it has exited, and nobody has waited for it yet
        assert not _alive(pid)
        assert _alive(os.getpid())
    finally:
        os.waitpid(pid, 0)


@dataclass
class SleepyWorker:
    """Finds nothing to do twice, then stops the loop."""

    stop: threading.Event
    name: str = "sleepy"
    idle_wait_s: float = 0.01
    steps: int = 0

    def step(self) -> bool:
        self.steps += 1
        if self.steps > 2:
            self.stop.set()
        return False

    def recover(self) -> None:
        pass

    def progress(self) -> Progress:
        return Progress(0.0)

    def close(self) -> None:
        pass


@dataclass
class ListeningWorker(SleepyWorker):
    """... and has a wait of its own (as the relay waits for the event store's NOTIFY)."""

    idle_wait_s: float = 0.25
    waits: list[float] = field(default_factory=list)

    def idle(self, timeout_s: float) -> None:
        self.waits.append(timeout_s)


def test_a_worker_with_a_wait_of_its_own_is_left_to_it_with_its_own_bound() -> None:
    stop = threading.Event()
    worker = ListeningWorker(stop)
    run_worker(worker, stop, idle_wait_s=30.0)
    assert worker.waits == [0.25, 0.25]


def test_a_worker_without_one_sleeps_its_own_idle_wait_not_the_default() -> None:
    """A consumer's poll has already waited for records: it looks again almost at once."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker, args=(SleepyWorker(stop), stop), kwargs={"idle_wait_s": 30.0}
    )
    thread.start()
    thread.join(5)
    assert not thread.is_alive()  # two waits of 0.01 s, not of 30 s
