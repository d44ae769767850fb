"""`ledger chaos`: every fault, `--runs` times, against one fault-free run of the same load.

A run: a database and topics of its own; the worker processes; the seeded load, sent over a
window of a few seconds; the fault, at a moment the run's seed picks; then the pipeline left to
catch up. Recovery time is from the end of the fault until every stage has handled what was
there when it ended: the intake everything on `ledger.intake`, then the relay everything the
intake had stored by then, then every read model everything the relay had published by then. A
pipeline that has not caught up with all of the load 240 s after it was sent has an unrecovered
stall. The end state is then compared with the fault-free run's (`chaos.state`), and the
workers' logs are read for stalls they noticed themselves (`worker.stalled`: each was a consumer
replaced), failures (`worker.failed`) and crashes (a process that died unasked).
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import Scratch, scratch, worker_env
from ledger.entrypoints.chaos import load as chaos_load
from ledger.entrypoints.chaos.faults import NONE, Fault, Run, install_hold
from ledger.entrypoints.chaos.processes import Workers
from ledger.entrypoints.chaos.state import EndState, capture, compare
from ledger.entrypoints.pipeline_stages import read_stages, wait_settled
from ledger.errors import LedgerError
from ledger.settings import Services, Settings

API_PORT = 8080
API_URL = f"http://127.0.0.1:{API_PORT}"
#: How long the pipeline may take to catch up once all of the load is sent.
SETTLE_TIMEOUT_S = 240.0


@dataclass
class RunResult:
    fault: str
    run: int
    messages: int
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    diverged: int = 0
    republished: int = 0
    stalls: int = 0
    unrecovered: int = 0
    #: A fault the pipeline should ride through (one Kafka node of three) stopped a stage.
    halted: int = 0
    failures: int = 0
    crashes: int = 0
    recovery_s: float | None = None
    story: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Nothing lost, duplicated, reordered or diverged; recovered; and no worker failed
        (an exception the supervisor rode out is a bug all the same) or crashed."""
        return not (
            self.lost
            or self.duplicated
            or self.reordered
            or self.diverged
            or self.unrecovered
            or self.halted
            or self.failures
            or self.crashes
        )


def measure_recovery(own: Scratch, lifted: float, deadline: float) -> float | None:
    """Seconds from `lifted` until each stage has handled what was before it then (see the
    module docstring); None if that did not happen before `deadline`."""
    targets: dict[str, int] = {}
    while time.monotonic() < deadline:
        stages = read_stages(own)
        if stages is not None:
            targets.setdefault("intake", stages.intake_end)
            if stages.intake_done >= targets["intake"]:
                targets.setdefault("relay", stages.stored)
                if stages.relay_done >= targets["relay"]:
                    targets.setdefault("projections", stages.published)
                    if stages.projected >= targets["projections"]:
                        return time.monotonic() - lifted
        time.sleep(0.1)
    return None


def api_up(url: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise LedgerError(f"the chaos API did not answer on {url} in {timeout_s:.0f} s")


@dataclass
class Options:
    learners: int = 150
    seed: int = 1
    window_s: float = 8.0
    logs: Path = Path()
    kafka_debug: bool = False


def run_once(
    base: Settings, services: Services, fault: Fault, index: int, options: Options
) -> tuple[RunResult, EndState | None]:
    """One run of `fault` (see the module docstring)."""
    rng = random.Random(f"{options.seed}:{fault.name}:{index}")  # noqa: S311 - a simulation
    prefix = f"chaos-{fault.name}-{index}-{secrets.token_hex(2)}."
    with scratch(base, services, prefix) as own:
        bootstrap.prepare_topics(own.settings, own.services)
        if fault.needs_hold:
            install_hold(own.services)
        plan = chaos_load.plan(own.settings.intake_topic, options.learners, options.seed)
        result = RunResult(fault.name, index, plan.messages)
        workers = Workers(
            worker_env(own, API_PORT),
            options.logs / f"{fault.name}-{index}",
            fault.roles,
            kafka_debug=options.kafka_debug,
        ).start()
        state: EndState | None = None
        try:
            state = _strike(own, fault, plan, workers, rng, options, result)
        except LedgerError as error:  # the run could not even start: counted, not fatal
            result.unrecovered = 1
            result.notes.append(str(error))
        finally:
            workers.stop()
        result.stalls = sum(1 for _ in workers.log_lines("worker.stalled"))
        result.failures = sum(1 for _ in workers.log_lines("worker.failed"))
        result.crashes = workers.crashes
        return result, state


def _strike(
    own: Scratch,
    fault: Fault,
    plan: chaos_load.Plan,
    workers: Workers,
    rng: random.Random,
    options: Options,
    result: RunResult,
) -> EndState:
    """Send the load, inject the fault at the moment the seed picks, wait for the pipeline to
    catch up (timing its recovery), and capture the end state."""
    stop = threading.Event()
    catalog_in = threading.Event()
    sent: list[chaos_load.Sent] = []
    loader = threading.Thread(
        target=lambda: sent.append(
            chaos_load.send(own.services, plan, API_URL, options.window_s, stop, catalog_in.set)
        ),
        name="chaos-load",
    )
    try:
        api_up(API_URL)
        loader.start()
        if not catalog_in.wait(120):
            raise LedgerError("the catalog was not stored within 120 s of a fault-free start")
        began = time.monotonic()
        time.sleep(rng.uniform(0.15, 0.6) * options.window_s)
        at = time.monotonic() - began
        run = Run(own.settings, own.services, own.settings.state_path, workers, rng)
        fault.inject(run)
        lifted = time.monotonic()
        result.story = [f"at {at:.1f} s: {line}" for line in run.story]
        result.halted = len(run.failed)
        result.notes.extend(run.failed)
        loader.join(options.window_s + SETTLE_TIMEOUT_S)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        result.recovery_s = measure_recovery(own, lifted, deadline)
        if not (sent and wait_settled(own, deadline)):
            result.unrecovered = 1
            result.notes.append("the pipeline did not catch up with the load")
        if sent and sent[0].refused:
            result.notes.extend(sent[0].refused[:3])
    finally:
        stop.set()
        if loader.is_alive():
            loader.join(30)
    ledger, *more_shards = bootstrap.open_shards(own.services)
    try:
        return capture(own.settings, own.services, ledger, more_shards)
    finally:
        for shard in (ledger, *more_shards):
            shard.close()


@dataclass
class Summary:
    """One line of the table: a fault over all its runs."""

    fault: str
    runs: int = 0
    messages: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    diverged: int = 0
    republished: int = 0
    stalls: int = 0
    unrecovered: int = 0
    halted: int = 0
    failures: int = 0
    crashes: int = 0
    max_recovery_s: float = 0.0

    def add(self, r: RunResult) -> None:
        self.runs += 1
        self.messages += r.messages
        for name in (
            "lost",
            "duplicated",
            "reordered",
            "diverged",
            "republished",
            "stalls",
            "unrecovered",
            "halted",
            "failures",
            "crashes",
        ):
            setattr(self, name, getattr(self, name) + getattr(r, name))
        if r.recovery_s is not None:
            self.max_recovery_s = max(self.max_recovery_s, round(r.recovery_s, 1))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_matrix(
    base: Settings,
    services: Services,
    faults: list[Fault],
    runs: int,
    options: Options,
    report: Callable[[RunResult], None],
) -> tuple[list[Summary], list[RunResult]]:
    """The fault-free run, then each fault `runs` times; every run compared with the first."""
    baseline_result, baseline = run_once(base, services, NONE, 0, options)
    report(baseline_result)
    if baseline is None or not baseline_result.clean:
        raise LedgerError(
            "the fault-free run did not finish cleanly, so nothing can be compared with it: "
            + "; ".join(baseline_result.notes or ["see the logs"])
        )
    summaries = {NONE.name: Summary(NONE.name)}
    summaries[NONE.name].add(baseline_result)
    results = [baseline_result]
    for fault in faults:
        summary = summaries.setdefault(fault.name, Summary(fault.name))
        for index in range(1, runs + 1):
            result, state = run_once(base, services, fault, index, options)
            if state is not None:
                difference = compare(baseline, state)
                result.lost += difference.lost
                result.duplicated += difference.duplicated
                result.reordered += difference.reordered
                result.diverged += difference.diverged
                result.republished = state.republished
                result.notes.extend(difference.notes)
            report(result)
            summary.add(result)
            results.append(result)
    return list(summaries.values()), results
