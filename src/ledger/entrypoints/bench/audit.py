"""`ledger bench audit`: how fast an auditor gets a long history, and how fast `verify` runs.

A learner with `events` events (enrolled, then grades and payments across the curriculum) is
written into a scratch database through the real `Ledger`; `audit history` is then timed
(median and worst of `samples` calls, with and without `--as-of`), and `audit verify` for that
learner is timed and its events/s printed. The target is a history under 100 ms at 1,000
events.
"""

from __future__ import annotations

import secrets
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from ledger.audit.history import learner_history
from ledger.audit.verify import verify
from ledger.domain.learner_state import Intent
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import deleting_topics, scratch
from ledger.relay import Relay
from ledger.settings import Services, Settings

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
COURSES = tuple(f"ds-{n}" for n in range(1, 10))
HISTORY_TARGET_MS = 100.0


@dataclass(frozen=True)
class AuditFigures:
    events: int
    history_ms: list[float]
    as_of_ms: list[float]
    verify_seconds: float
    verify_events: int


def _long_learner(services: Services, learner_id: str, events: int) -> int:
    """Write a learner with about `events` events; return how many were stored."""
    ledger = bootstrap.open_ledger(services)
    try:
        ledger.publish_specialization(
            specialization_id="ds",
            title="Data Science",
            partners=("JHU",),
            language="en",
            courses=COURSES,
            capstone_course_id="ds-capstone",
            at=T0,
        )
        with ledger.session() as s:
            s.enroll(learner_id, "ds", Intent.CERTIFICATE, T0)
        n = 0
        learner = ledger.get_learner(learner_id)
        while learner is not None and learner.version < events:
            with ledger.session() as s:
                for _ in range(100):
                    n += 1
                    at = T0 + timedelta(hours=n)
                    course = COURSES[n % len(COURSES)]
                    s.record_grade(learner_id, course, Decimal("0.50"), False, at)
            learner = ledger.get_learner(learner_id)
        return learner.version if learner is not None else 0
    finally:
        ledger.close()


def run_audit_bench(
    base: Settings, services: Services, events: int, samples: int, console: Console
) -> AuditFigures:
    prefix = f"bench-{secrets.token_hex(3)}."
    with scratch(base, services, prefix) as own, deleting_topics(services, prefix):
        settings = own.settings
        bootstrap.prepare_topics(settings, own.services)
        learner_id = "long-history"
        stored = _long_learner(own.services, learner_id, events)
        console.print(f"{learner_id}: {stored:,} events stored")
        ledger = bootstrap.open_ledger(own.services)
        try:
            relay = Relay(ledger, settings, own.services.kafka_bootstrap)
            while relay.step():
                pass
            relay.close()
            history = learner_history(ledger, learner_id)
            middle = history.events[len(history.events) // 2].recorded_time
            timings: dict[str, list[float]] = {"history": [], "as_of": []}
            for _ in range(samples):
                started = time.perf_counter()
                learner_history(ledger, learner_id)
                timings["history"].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                learner_history(ledger, learner_id, middle)
                timings["as_of"].append((time.perf_counter() - started) * 1000)
            report = verify(ledger, settings, own.services, learner_id, read_models=False)
        finally:
            ledger.close()
    return AuditFigures(stored, timings["history"], timings["as_of"], report.seconds, report.events)


def print_audit(console: Console, figures: AuditFigures) -> None:
    table = Table(title=f"ledger bench audit: one learner with {figures.events:,} events")
    for column in ("measure", "median", "max", f"target < {HISTORY_TARGET_MS:.0f} ms"):
        table.add_column(column, justify="right")
    for name, values in (
        ("audit history", figures.history_ms),
        ("audit history --as-of (half way)", figures.as_of_ms),
    ):
        median = statistics.median(values)
        verdict = "yes" if median < HISTORY_TARGET_MS else "NO"
        table.add_row(name, f"{median:.1f} ms", f"{max(values):.1f} ms", verdict)
    console.print(table)
    rate = figures.verify_events / figures.verify_seconds if figures.verify_seconds else 0.0
    console.print(
        f"audit verify --learner (chain and log, no rebuild): {figures.verify_events:,} events "
        f"in {figures.verify_seconds:.2f} s, {rate:,.0f} events/s"
    )
