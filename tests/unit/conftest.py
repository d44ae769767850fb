"""Unit tests need no services: the aggregates are pure, the `Ledger` runs in memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.application import Ledger


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    app = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield app
    app.close()
