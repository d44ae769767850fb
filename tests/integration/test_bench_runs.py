"""`ledger bench intake` and `ledger bench projections` on the real stack, small: each
measures with one and with two worker processes on the topics its round published (several
scratch databases share them), and leaves no topic of its own behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from ledger.settings import Settings

from .helpers import cli_env, services_of

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
    ledger = Path(sys.executable).with_name("ledger")
    done = subprocess.run(
        [str(ledger), "bench", *command],
        env=cli_env(own_settings),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    # A run whose workers find no topic (deleted under them) ends non-zero, saying so.
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "target" in done.stdout or "at least" in done.stdout  # its verdict line
    assert _bench_topics(own_settings) <= before  # its own are gone (others' may be too)
