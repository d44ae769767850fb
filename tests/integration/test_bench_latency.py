"""`ledger bench latency` on the real stack: two short runs give every hop and both baselines,
and the medians of the two."""

from __future__ import annotations

import json

import pytest

from ledger.settings import Settings

from .helpers import ledger_cli

pytestmark = pytest.mark.integration


def test_short_latency_runs_measure_every_hop_beside_kafka_and_postgresql(
    own_settings: Settings,
) -> None:
    done = ledger_cli(
        own_settings,
        *("bench", "latency", "--seconds", "5", "--burst", "1000", "--learners", "200"),
        *("--every", "5", "--repeat", "2", "--json"),
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)
    # Two runs, each whole, and the medians of their figures.
    assert len(document["runs"]) == 2
    medians = document["medians"]
    ends = sorted(r["hops"][-1]["p50_ms"] for r in document["runs"])
    assert medians["publish → read models (end to end) p50_ms"] == pytest.approx(sum(ends) / 2)
    figures = document["runs"][1]
    assert figures["intake_max_per_second"] > 0
    assert figures["rate_per_second"] == pytest.approx(figures["pipeline_max_per_second"] / 2, 0.01)
    assert figures["intake_max_per_second"] >= figures["pipeline_max_per_second"]
    assert figures["unfinished"] == 0
    hops = {h["name"]: h for h in figures["hops"]}
    assert list(hops) == [
        "publish → stored (event store)",
        "stored → on ledger.events",
        "ledger.events → read models",
        "publish → read models (end to end)",
    ]
    sent = figures["sent"]
    # A sampled message that made no event (a rejection) is timed to the event store only.
    assert 0 <= figures["eventless"] <= sent // 50
    for name, hop in hops.items():
        # About one sample in five of what was sent, each through every hop it took.
        eventless = 0 if name.startswith("publish → stored") else figures["eventless"]
        assert hop["samples"] >= sent // 5 - 1 - eventless
        assert 0 < hop["p50_ms"] <= hop["p90_ms"] <= hop["p99_ms"] <= hop["max_ms"]
    end = hops["publish → read models (end to end)"]
    assert end["p50_ms"] >= hops["publish → stored (event store)"]["p50_ms"]
    assert [b["name"] for b in figures["baselines"]] == [
        "raw Kafka round trip (produce acks=all, consume)",
        "raw PostgreSQL commit (one row)",
    ]
    assert all(b["samples"] == 300 and b["p50_ms"] > 0 for b in figures["baselines"])
    # Where the processors went while it sent: every part named, the workers busy, and no
    # part busier than the machine.
    cpu = {c["name"]: c["cores"] for c in figures["cpu"]}
    assert set(cpu) >= {
        "this benchmark (load, observer, sampler)",
        "intake",
        "relay",
        "projections",
        "PostgreSQL (every process)",
        "Kafka broker",
        "everything else",
    }
    assert 0 < figures["machine_cores_busy"] <= figures["cores"] + 0.05
    assert all(cpu[name] > 0 for name in ("intake", "relay", "projections"))
    assert sum(cpu.values()) <= figures["machine_cores_busy"] + 0.3
    # What each worker did in the meantime, from its own batch lines.
    stages = {a["name"]: a for a in figures["stages"]}
    assert list(stages) == ["intake", "relay", "projections"]
    assert all(a["batches"] > 0 and 0 < a["busy"] <= 1.5 for a in stages.values()), stages
