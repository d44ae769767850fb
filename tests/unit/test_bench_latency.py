"""The latency benchmark's own arithmetic: the load's interleaving and the percentiles."""

from __future__ import annotations

import itertools

import pytest

from ledger.broker import OutRecord
from ledger.entrypoints.bench.latency import interleaved, spread
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
