"""`ledger bench all`'s rows and `ledger bench compare`: each figure beside its baseline with the
right ratio, a run written and read back whole, a malformed file refused with its reason, and
two runs compared with better, worse and noise told apart by which way each figure is better.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from ledger.entrypoints.bench.cli_start import Timing
from ledger.entrypoints.bench.common import Figure
from ledger.entrypoints.bench.summary import (
    Measure,
    document,
    from_cli,
    from_figures,
    print_comparison,
    read_document,
)
from ledger.errors import LedgerError

LEDGER = str(Path(sys.executable).with_name("ledger"))


def test_each_rate_stands_beside_every_baseline_with_its_share() -> None:
    rows = from_figures(
        "intake",
        [
            Figure("kafka", 40_000.0, 1.0, 40_000),
            Figure("postgres", 20_000.0, 2.0, 40_000),
            Figure("intake, 2 processes", 10_000.0, 4.0, 40_000),
        ],
        2,
    )
    beside = [(r.name, r.baseline, r.ratio) for r in rows]
    assert beside == [
        ("kafka", None, None),
        ("postgres", None, None),
        ("intake, 2 processes", "kafka", 0.25),
        ("intake, 2 processes", "postgres", 0.5),
    ]


def test_a_command_start_is_told_in_python_starts() -> None:
    rows = from_cli([Timing("python -c pass", [10.0, 12.0, 11.0]), Timing("ledger --help", [99.0])])
    assert rows[1].baseline == "python -c pass"
    assert rows[1].ratio == pytest.approx(9.0)
    assert rows[1].better == "lower"


def test_a_run_is_read_back_whole(tmp_path: Path) -> None:
    measures = [
        Measure("cli", "ledger --help", 97.0, "ms median", "lower", "python -c pass", 12.0),
        Measure("projections", "worker", 40_000.0, "per second", "higher"),
    ]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(document(measures, 12.5)))
    found, read = read_document(path)
    assert read == measures
    assert found["machine"]["cpus"] >= 1
    assert found["seconds"] == 12.5


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not a readable JSON document"),
        ('{"kind": "something else"}', "not written by `ledger bench all --json`"),
        ('{"kind": "ledger-bench-all", "measures": [{"bench": "x"}]}', "a measure is malformed"),
    ],
)
def test_a_file_that_is_not_a_run_is_refused_with_its_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "run.json"
    path.write_text(text)
    with pytest.raises(LedgerError, match=reason):
        read_document(path)


def _compared(before: list[Measure], after: list[Measure]) -> dict[str, str]:
    buffer = io.StringIO()
    print_comparison(Console(file=buffer, width=400), before, after, "A against B")
    verdicts: dict[str, str] = {}
    for line in buffer.getvalue().splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 9 and cells[2]:
            verdicts[cells[2]] = cells[9]
    return verdicts


def test_a_comparison_knows_which_way_is_better() -> None:
    before = [
        Measure("b", "rate up", 100.0, "per second", "higher"),
        Measure("b", "rate down", 100.0, "per second", "higher"),
        Measure("b", "latency up", 10.0, "ms p99", "lower"),
        Measure("b", "latency down", 10.0, "ms p99", "lower"),
        Measure("b", "steady", 100.0, "per second", "higher"),
        Measure("b", "dropped", 1.0, "MiB", "lower"),
    ]
    after = [
        Measure("b", "rate up", 150.0, "per second", "higher"),
        Measure("b", "rate down", 50.0, "per second", "higher"),
        Measure("b", "latency up", 20.0, "ms p99", "lower"),
        Measure("b", "latency down", 5.0, "ms p99", "lower"),
        Measure("b", "steady", 105.0, "per second", "higher"),
        Measure("b", "added", 1.0, "MiB", "lower"),
    ]
    assert _compared(before, after) == {
        "rate up": "better",
        "rate down": "worse",
        "latency up": "worse",
        "latency down": "better",
        "steady": "noise",
        "added": "new",
        "dropped": "gone",
    }


def test_compare_on_the_command_line_says_what_is_wrong_with_a_file(tmp_path: Path) -> None:
    good = tmp_path / "a.json"
    good.write_text(json.dumps(document([Measure("b", "m", 1.0, "MiB", "lower")], 1.0)))
    bad = tmp_path / "b.json"
    bad.write_text("[]")
    done = subprocess.run(
        [LEDGER, "bench", "compare", str(good), str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "not written by `ledger bench all --json`" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    same = subprocess.run(
        [LEDGER, "bench", "compare", str(good), str(good)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert same.returncode == 0, same.stderr
    assert "noise" in same.stdout
