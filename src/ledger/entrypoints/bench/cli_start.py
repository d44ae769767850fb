"""`ledger bench cli`: how long the `ledger` command takes to answer, cold, beside Python itself.

Support staff run `ledger learner show` dozens of times a day, so the command's start-up is
what they feel: each command imports only what it needs, when it runs. This measures whole
processes, each started afresh (as a person at a terminal starts them): `python -c pass` (the
floor no Python command can go under), `ledger --help`, and `ledger learner show ID --json` on
the running stack. The three are run in turn, round after round, so drift on a noisy machine
falls on all of them alike; the figures are medians.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ledger.entrypoints import bootstrap
from ledger.settings import Services

#: What support staff may expect: `ledger --help`, and a learner shown on a running stack.
TARGETS_MS = {"ledger --help": 300.0, "ledger learner show ID --json": 500.0}


@dataclass(frozen=True)
class Timing:
    name: str
    samples_ms: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)


def _some_learner(services: Services) -> str:
    """A learner the read models know, or an id nobody has (the query runs all the same)."""
    from projections.generations import live_schema  # noqa: PLC0415
    from projections.read_models import learner_progress  # noqa: PLC0415

    try:
        with bootstrap.connect(services) as conn, conn.cursor() as cur:
            schema = live_schema(cur, learner_progress.NAME)
            cur.execute(f'SELECT learner_id FROM "{schema}".learners LIMIT 1')  # noqa: S608
            row = cur.fetchone()
    except Exception:  # noqa: BLE001 - no read model yet: time the "not known" answer
        return "no-such-learner"
    return str(row[0]) if row else "no-such-learner"


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - started) * 1000


def run_cli_bench(services: Services, samples: int, console: Console) -> tuple[list[Timing], str]:
    ledger = str(Path(sys.executable).with_name("ledger"))
    learner = _some_learner(services)
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "ledger --help": [ledger, "--help"],
        "ledger learner show ID --json": [ledger, "learner", "show", learner, "--json"],
    }
    for command in commands.values():  # once each, unmeasured: the files are in the page cache
        _time(command)
    found: dict[str, list[float]] = {name: [] for name in commands}
    with console.status(f"timing {samples} cold starts of each"):
        for _ in range(samples):
            for name, command in commands.items():
                found[name].append(_time(command))
    return [Timing(name, values) for name, values in found.items()], learner


def print_cli(console: Console, timings: list[Timing], learner: str) -> None:
    floor = timings[0].median_ms
    table = Table(title=f"ledger bench cli: cold starts, medians of {len(timings[0].samples_ms)}")
    for column in ("command", "median ms", "min ms", "max ms", "/ python -c pass", "target"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for t in timings:
        target = TARGETS_MS.get(t.name)
        verdict = (
            ""
            if target is None
            else f"≤ {target:.0f} ms: " + ("met" if t.median_ms <= target else "NOT met")
        )
        table.add_row(
            t.name,
            f"{t.median_ms:.0f}",
            f"{min(t.samples_ms):.0f}",
            f"{max(t.samples_ms):.0f}",
            f"{t.median_ms / floor:.1f}x",
            verdict,
        )
    console.print(table)
    console.print(f"learner shown: {learner!r}")
