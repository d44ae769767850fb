"""`ledger bench intake` and `ledger bench projections` on the real stack, small: each
measures with one and with two worker processes on the topics its round published (several
scratch databases share them), and leaves no topic of its own behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from ledger.settings import Settings

from .helpers import ledger_cli, services_of

pytestmark = pytest.mark.integration


def _bench_topics(settings: Settings) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=services_of(settings).kafka_bootstrap)
    try:
        return {t for t in admin.list_topics() if t.startswith("bench-")}
    finally:
        admin.close()


@pytest.mark.parametrize(
    "command",
    [
        ["intake", "--messages", "2000", "--learners", "200", "--processes", "2"],
        ["projections", "--events", "3000", "--learners", "300", "--processes", "2"],
    ],
    ids=["intake", "projections"],
)
def test_a_small_benchmark_measures_every_process_count_and_deletes_its_topics(
    own_settings: Settings, command: list[str]
) -> None:
    before = _bench_topics(own_settings)
    done = ledger_cli(own_settings, "bench", *command, check=False, timeout=900)
    # A run whose workers find no topic (deleted under them) ends non-zero, saying so.
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "target" in done.stdout or "at least" in done.stdout  # its verdict line
    assert _bench_topics(own_settings) <= before  # its own are gone (others' may be too)


def test_bench_shards_measures_each_layout_and_capacity_plans_from_what_it_measured(
    own_settings: Settings, tmp_path: Path
) -> None:
    """`ledger bench shards` over 1 and 2 shards, small: every message applied in each layout,
    the CPU it took attributed (the workers' processes and their database sessions counted
    before they end), no topic left; `ledger capacity` then plans from the file it wrote."""
    before = _bench_topics(own_settings)
    inputs = tmp_path / "inputs.json"
    done = ledger_cli(
        own_settings,
        *("bench", "shards", "--messages", "6000", "--learners", "600", "--shards", "1,2"),
        *("--processes", "2", "--json", str(inputs)),
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads(inputs.read_text())
    runs = {run["shards"]: run for run in document["runs"]}
    assert set(runs) == {1, 2}
    for run in runs.values():
        assert run["commands"] == 6000
        assert run["commands_per_second"] > 0
        assert run["cpu_ms_per_1000"]["intake"] > 0
        assert run["cpu_ms_per_1000"]["postgres"] > 0
        assert run["events"] > run["commands"] / 2
        assert run["store_bytes_per_event"] > 0
    measured = document["measured"]
    assert measured["shard_commands_per_second"] == runs[1]["commands_per_second"]
    assert measured["projection_events_per_second"] > 0
    assert _bench_topics(own_settings) <= before
    planned = ledger_cli(
        own_settings, "capacity", "--inputs", str(inputs), "--json", check=False, timeout=120
    )
    assert planned.returncode == 0, planned.stderr[-3000:]
    plan = json.loads(planned.stdout)["plan"]
    assert plan["shards"] >= max(plan["shards_for_peak"], plan["shards_for_storage"])
    assert plan["partitions"] % plan["shards"] == 0
    assert plan["brokers"] >= 3
