"""The rulebook's acceptance scenario, in memory, for several shufflings."""

from __future__ import annotations

import pytest

from ledger.application import Ledger

from ..scenarios import check_data_science_outcome, data_science_learner


@pytest.mark.parametrize("seed", range(8))
def test_data_science_learner_gets_exactly_one_certificate(seed: int) -> None:
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        check_data_science_outcome(data_science_learner(ledger, seed))
    finally:
        ledger.close()
