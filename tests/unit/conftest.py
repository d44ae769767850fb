"""Unit tests need no services: the aggregates are pure, the `Ledger` runs in memory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ledger.application import Ledger
from ledger.domain import Policy, Price, Specialization

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DS_COURSES = tuple(f"ds-{n}" for n in range(1, 10))


def published(
    specialization_id: str = "ds",
    courses: tuple[str, ...] = DS_COURSES,
    capstone: str = "ds-capstone",
    at: datetime = T0,
) -> Specialization:
    return Specialization.publish(
        specialization_id=specialization_id,
        title="Data Science",
        partners=("Johns Hopkins University",),
        language="en",
        courses=courses,
        capstone_course_id=capstone,
        price=Price(),
        policy=Policy(),
        at=at,
    )


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    app = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield app
    app.close()
