"""Every benchmark's figures as rows of one kind (`Measure`), for `ledger bench all` and
`ledger bench compare`: each figure with the raw baseline measured beside it in the same run,
and their ratio, so that two runs (two commits, two machines) can be held against each other
figure by figure.

A rate is better higher, a latency or a size better lower; the ratio is always figure over
baseline, so a rate's ratio is the share of the raw ceiling reached and a latency's is how many
raw round trips it costs.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from ledger.entrypoints.bench.cli_start import Timing
from ledger.entrypoints.bench.common import Figure, Latency
from ledger.entrypoints.bench.http import HTTP_ROUND_TRIP
from ledger.entrypoints.bench.latency import LatencyFigures
from ledger.entrypoints.bench.projections import ProjectionsResult
from ledger.entrypoints.bench.queries import SQL_ROUND_TRIP, QueriesResult
from ledger.errors import LedgerError

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Measure:
    """One figure of one benchmark, and the raw baseline it stands beside."""

    bench: str
    name: str
    value: float
    unit: str
    better: Better
    baseline: str | None = None
    baseline_value: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.bench, self.name, self.unit)

    @property
    def ratio(self) -> float | None:
        if self.baseline_value is None or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value


def from_figures(bench: str, figures: Sequence[Figure], baselines: int) -> list[Measure]:
    """Rates: the first `baselines` figures are raw ceilings; each later one is a row beside
    each of them."""
    rows = [
        Measure(bench, f.name, f.per_second, "per second", "higher") for f in figures[:baselines]
    ]
    for figure in figures[baselines:]:
        for base in figures[:baselines]:
            rows.append(
                Measure(
                    bench,
                    figure.name,
                    figure.per_second,
                    "per second",
                    "higher",
                    base.name,
                    base.per_second,
                )
            )
    return rows


def from_projections(result: ProjectionsResult) -> list[Measure]:
    rows = from_figures("projections", result.figures, 2)
    rows.append(
        Measure(
            "projections",
            "with credentials / without (medians)",
            result.credential_ratio * 100,
            "%",
            "higher",
        )
    )
    return rows


def _latency_rows(bench: str, timed: Iterable[Latency], baseline: Latency | None) -> list[Measure]:
    rows = []
    for latency in timed:
        for unit, value, base in (
            ("ms p50", latency.p50_ms, baseline.p50_ms if baseline else None),
            ("ms p99", latency.p99_ms, baseline.p99_ms if baseline else None),
        ):
            rows.append(
                Measure(
                    bench,
                    latency.query,
                    value,
                    unit,
                    "lower",
                    baseline.query if baseline else None,
                    base,
                )
            )
    return rows


def from_queries(result: QueriesResult) -> list[Measure]:
    """SQL queries beside a bare PostgreSQL round trip, HTTP routes beside `/healthz`."""
    bench = f"queries ({result.learners:,} learners)"
    by_name = {latency.query: latency for latency in result.latencies}
    sql_floor = by_name.get(SQL_ROUND_TRIP)
    http_floor = by_name.get(HTTP_ROUND_TRIP)
    rows = _latency_rows(bench, [x for x in (sql_floor, http_floor) if x is not None], None)
    for latency in result.latencies:
        if latency.query in (SQL_ROUND_TRIP, HTTP_ROUND_TRIP):
            continue
        http = latency.query.startswith(("API", "console"))
        rows += _latency_rows(bench, [latency], http_floor if http else sql_floor)
    rows += [
        Measure(bench, f"{m.process}: peak resident size", m.peak_mb, "MiB", "lower")
        for m in result.memory
    ]
    return rows


def from_latency(figures: LatencyFigures) -> list[Measure]:
    """Each hop's p50 and p99 beside the raw Kafka round trip's; the rates of the burst."""
    bench = "latency"
    rows = [
        Measure(bench, "intake maximum (burst)", figures.max_rate, "per second", "higher"),
        Measure(bench, "pipeline maximum (burst)", figures.pipeline_rate, "per second", "higher"),
        Measure(bench, "steady load", figures.rate, "per second", "higher"),
    ]
    kafka = figures.baselines[0] if figures.baselines else None
    for spread in [*figures.baselines, *figures.hops]:
        base = None if spread in figures.baselines else kafka
        for unit, value, floor in (
            ("ms p50", spread.p50_ms, base.p50_ms if base else None),
            ("ms p99", spread.p99_ms, base.p99_ms if base else None),
        ):
            rows.append(
                Measure(
                    bench, spread.name, value, unit, "lower", base.name if base else None, floor
                )
            )
    return rows


def from_cli(timings: Sequence[Timing]) -> list[Measure]:
    """Cold starts beside `python -c pass`, medians."""
    floor = timings[0]
    rows = [Measure("cli", floor.name, floor.median_ms, "ms median", "lower")]
    rows += [
        Measure("cli", t.name, t.median_ms, "ms median", "lower", floor.name, floor.median_ms)
        for t in timings[1:]
    ]
    return rows


# One run as a document, and two runs held against each other


def _commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except OSError:
        return "unknown"
    return found.stdout.strip() or "unknown"


def document(measures: Sequence[Measure], seconds: float) -> dict[str, Any]:
    """One run: where and when it ran, and every measure."""
    return {
        "kind": "ledger-bench-all",
        "version": 1,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "commit": _commit(),
        "measures": [asdict(m) for m in measures],
    }


def read_document(path: Path) -> tuple[dict[str, Any], list[Measure]]:
    """A run written by `ledger bench all --json`, with its measures."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LedgerError(f"{path}: not a readable JSON document ({error})") from error
    if not isinstance(found, dict) or found.get("kind") != "ledger-bench-all":
        raise LedgerError(f"{path}: not written by `ledger bench all --json`")
    try:
        measures = [Measure(**m) for m in found["measures"]]
    except (KeyError, TypeError) as error:
        raise LedgerError(f"{path}: a measure is malformed ({error})") from error
    return found, measures


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if unit == "per second" or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def print_measures(console: Console, measures: Sequence[Measure], title: str) -> None:
    table = Table(title=title)
    for column in ("bench", "measure", "unit", "figure", "baseline (same run)", "raw", "ratio"):
        table.add_column(
            column, justify="right" if column in ("figure", "raw", "ratio") else "left"
        )
    for m in measures:
        ratio = m.ratio
        table.add_row(
            m.bench,
            m.name,
            m.unit,
            _number(m.value, m.unit),
            m.baseline or "",
            _number(m.baseline_value, m.unit),
            "" if ratio is None else f"{ratio:.0%}" if m.unit == "per second" else f"{ratio:.1f}x",
        )
    console.print(table)


def print_comparison(
    console: Console, before: Sequence[Measure], after: Sequence[Measure], title: str
) -> None:
    """Each measure of both runs, its change, and whether that is better or worse (a change of
    less than `NOISE` either way is called noise: two cores, shared)."""
    earlier = {(m.key, m.baseline): m for m in before}
    table = Table(title=title)
    for column in ("bench", "measure", "unit", "A", "B", "change", "ratio A", "ratio B", "verdict"):
        table.add_column(
            column, justify="left" if column in ("bench", "measure", "unit", "verdict") else "right"
        )
    for m in after:
        old = earlier.pop((m.key, m.baseline), None)
        if old is None:
            table.add_row(m.bench, m.name, m.unit, "", _number(m.value, m.unit), "", "", "", "new")
            continue
        change = (m.value - old.value) / old.value if old.value else 0.0
        gained = change if m.better == "higher" else -change
        verdict = "noise" if abs(change) < NOISE else ("better" if gained > 0 else "worse")
        table.add_row(
            m.bench,
            m.name + (f" / {m.baseline}" if m.baseline else ""),
            m.unit,
            _number(old.value, m.unit),
            _number(m.value, m.unit),
            f"{change:+.0%}",
            "" if old.ratio is None else f"{old.ratio:.2f}",
            "" if m.ratio is None else f"{m.ratio:.2f}",
            verdict,
        )
    for old in earlier.values():
        table.add_row(
            old.bench, old.name, old.unit, _number(old.value, old.unit), "", "", "", "", "gone"
        )
    console.print(table)


#: A change smaller than this either way is not called better or worse.
NOISE = 0.10
