"""The latency benchmark's own arithmetic: the load's interleaving and the percentiles."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from ledger.broker import OutRecord
from ledger.entrypoints.bench.latency import (
    LatencyFigures,
    interleaved,
    medians_of,
    print_latency_runs,
    spread,
    stage_activity,
)
from ledger.errors import LedgerError


def _records() -> list[OutRecord]:
    return [
        OutRecord("t", f"learner-{n}".encode(), f"{n}:{i}".encode(), [])
        for n in range(20)
        for i in range(5)
    ]


def test_interleaving_keeps_each_learners_order_and_every_record() -> None:
    records = _records()
    mixed = interleaved(records, seed=3)
    assert sorted(r.value or b"" for r in mixed) == sorted(r.value or b"" for r in records)
    for n in range(20):
        own = [r.value for r in mixed if r.key == f"learner-{n}".encode()]
        assert own == [f"{n}:{i}".encode() for i in range(5)]


def test_interleaving_mixes_the_learners_and_follows_its_seed() -> None:
    records = _records()
    mixed = interleaved(records, seed=3)
    # Learner by learner would change key only 19 times in 100 records.
    changes = sum(1 for a, b in itertools.pairwise(mixed) if a.key != b.key)
    assert changes > 60
    assert [r.value for r in interleaved(records, seed=3)] == [r.value for r in mixed]
    assert [r.value for r in interleaved(records, seed=4)] != [r.value for r in mixed]


def test_spread_gives_percentiles_in_milliseconds() -> None:
    seconds = [n / 1000 for n in range(1, 101)]  # 1 ms .. 100 ms
    got = spread("hop", seconds)
    assert got.samples == 100
    assert got.p50_ms == pytest.approx(50.5)
    assert got.p90_ms == pytest.approx(90.1)
    assert got.p99_ms == pytest.approx(99.01)
    assert got.max_ms == pytest.approx(100.0)


def test_spread_refuses_to_make_percentiles_of_nothing() -> None:
    with pytest.raises(LedgerError, match="too few samples"):
        spread("hop", [0.1])


def test_stage_activity_reads_each_workers_batch_lines_in_the_window(tmp_path: Path) -> None:
    def line(event: str, at: str, **fields: object) -> str:
        return json.dumps({"event": event, "timestamp": f"2026-12-06T10:00:{at}Z", **fields})

    (tmp_path / "intake.log").write_text(
        "\n".join(
            [
                line("intake.batch", "00.000000", records=999, seconds=9.0),  # before the window
                line("intake.message", "01.000000", status="accepted"),
                line("intake.batch", "01.000000", records=10, seconds=0.02),
                line("intake.batch", "02.000000", records=30, seconds=0.04),
                "not json at all",
                line("intake.batch", "03.000000", records=20, seconds=0.03),
            ]
        )
    )
    (tmp_path / "relay.log").write_text(
        "\n".join(
            [
                line("relay.published", "01.500000", stream="events", count=40, seconds=0.01),
                line("relay.published", "01.600000", stream="rejections", count=1, seconds=0.5),
            ]
        )
    )
    (tmp_path / "projections.log").write_text("")
    start = datetime(2026, 12, 6, 10, 0, 0, 500000, tzinfo=UTC).timestamp()
    stages = {s.name: s for s in stage_activity(tmp_path, start, start + 10)}
    intake = stages["intake"]
    assert (intake.batches, intake.median_records, intake.median_ms) == (3, 20, 30)
    assert intake.busy == pytest.approx(0.09 / 10)
    relay = stages["relay"]
    assert (relay.batches, relay.median_records) == (1, 40)  # the rejections' page is not counted
    assert stages["projections"].batches == 0


def _run(rate: float, end_to_end_ms: list[float]) -> LatencyFigures:
    figures = LatencyFigures(rate * 2, rate * 2, 1000, rate, 30.0, int(rate * 30))
    figures.hops = [
        spread("publish → stored (event store)", [ms / 2000 for ms in end_to_end_ms]),
        spread("publish → read models (end to end)", [ms / 1000 for ms in end_to_end_ms]),
    ]
    return figures


def test_the_medians_of_several_runs_take_each_figure_across_the_runs() -> None:
    runs = [_run(1900, [80.0] * 95 + [400.0] * 5), _run(2000, [120.0] * 100)]
    runs.append(_run(1800, [90.0] * 100))
    middle = medians_of(runs)
    assert middle["rate_per_second"] == 1900
    assert middle["publish → read models (end to end) p50_ms"] == pytest.approx(90.0)
    assert middle["publish → stored (event store) p50_ms"] == pytest.approx(45.0)
    # each run's own p99 first (400, 120, 90), then their median
    assert middle["publish → read models (end to end) p99_ms"] == pytest.approx(120.0)


def test_the_summary_judges_the_medians_not_the_best_run() -> None:
    console = Console(record=True, width=200)
    print_latency_runs(console, [_run(1900, [90.0] * 100), *[_run(1900, [130.0] * 100)] * 2])
    text = console.export_text()
    assert "p50 130 ms (target ≤ 100)" in text and "NOT met" in text
    console = Console(record=True, width=200)
    print_latency_runs(console, [_run(1900, [90.0] * 100)] * 2 + [_run(1900, [130.0] * 100)])
    assert "p50 90 ms (target ≤ 100), p99 90 ms (≤ 500): met" in console.export_text()
