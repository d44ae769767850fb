"""How much memory the processes that read the read models hold over a large population:
`ledger run projections` applying traffic of many learners on top of it, and `ledger run api`
answering the support queries (`bench.http`).

Both keep bounded state by design: the projection worker keeps the rows of at most
`ModelState.LIMIT` learners per read model between batches, then starts afresh; the API keeps
nothing per learner. The figure is the kernel's peak resident size (`VmHWM`), so a spike
between samples is not missed.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ledger.broker import OutRecord
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import Scratch, worker_env
from ledger.entrypoints.bench.intake import bench_messages
from ledger.entrypoints.bench.ledger_events import (
    ledger_event_records,
    messages_for,
    publish,
)
from ledger.errors import LedgerError
from projections.applying import ModelState
from projections.status import projection_lag


@dataclass(frozen=True)
class ProcessMemory:
    """One process's peak resident size, and what it had done by then."""

    process: str
    peak_mb: float
    work: str


def peak_resident_mb(pid: int) -> float:
    """The peak resident set size of a live process, in MiB (Linux: `VmHWM`)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise LedgerError(f"/proc/{pid}/status has no VmHWM line")


#: Learners of the traffic the projection worker applies: more than a worker keeps rows of, so
#: its state starts afresh at least once and the bound is shown, not assumed.
TRAFFIC_LEARNERS = 2 * ModelState.LIMIT


def projection_worker_memory(
    own: Scratch, advance: Callable[[int], None], learners: int = TRAFFIC_LEARNERS
) -> ProcessMemory:
    """Run `ledger run projections` on the loaded population while it applies the events of
    `learners` new learners (the intake benchmark's mix); its peak resident size once it has
    applied them all."""
    inbound = bench_messages("bench", messages_for(learners * 5, learners), learners, seed=3)
    records = ledger_event_records(inbound, "bench", lambda n: None)
    bootstrap.prepare_topics(own.settings, own.services)
    topic = own.settings.events_topic
    publish(
        own.services.kafka_bootstrap, [OutRecord(topic, r.key, r.value, r.headers) for r in records]
    )
    with tempfile.NamedTemporaryFile(prefix="ledger-bench-projections-", suffix=".log") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger.entrypoints.cli.main", "run", "projections"],
            env=worker_env(own, own.settings.api_port, "warning"),  # it serves no API
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            peak = _until_applied(own, process, len(records), advance, Path(log.name))
        finally:
            process.terminate()
            process.wait(30)
    return ProcessMemory(
        "ledger run projections",
        peak,
        f"applied {len(records):,} events of {learners:,} new learners",
    )


def _until_applied(
    own: Scratch,
    process: subprocess.Popen[bytes],
    total: int,
    advance: Callable[[int], None],
    log: Path,
) -> float:
    kafka, topic = own.services.kafka_bootstrap, own.settings.events_topic
    deadline = time.monotonic() + 900
    with bootstrap.connect(own.services) as conn:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LedgerError(f"the projection worker exited: {log.read_text()[-2000:]}")
            done: dict[str, int] = {}
            behind = 0
            for lag in projection_lag(conn, kafka, topic):
                done[lag.projection] = done.get(lag.projection, 0) + lag.done
                behind += lag.behind
            advance(min(done.values(), default=0))
            if behind == 0:
                return peak_resident_mb(process.pid)
            time.sleep(0.5)
    raise LedgerError("the projection worker did not catch up within 15 minutes")
