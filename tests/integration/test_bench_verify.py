"""`ledger bench verify` on the real stack: a small ledger filled through the pipeline, then raw
Kafka, the rebuilds and `audit verify` over the same records (which must find nothing wrong)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ledger.settings import Settings

from .helpers import cli_env

pytestmark = pytest.mark.integration


def test_a_small_ledger_is_verified_and_rebuilt_beside_raw_kafka(own_settings: Settings) -> None:
    ledger = Path(sys.executable).with_name("ledger")
    done = subprocess.run(
        [str(ledger), "bench", "verify", "--processes", "2", "--messages", "1500"],
        env={**cli_env(own_settings), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for measure in (
        "kafka-python consume, no work",
        "projections rebuild, 5 read models, 1 process",
        "projections rebuild, 5 read models, 2 processes",
        "audit verify, all three checks, 2 processes",
    ):
        assert measure in done.stdout, done.stdout
    assert "rebuild at least 30,000 events/s:" in done.stdout
    assert "audit verify at least 10,000 events/s:" in done.stdout
