"""`ledger stack down` then `ledger stack up`: the stored history and the answers survive."""

from __future__ import annotations

import json

import pytest

from ledger.entrypoints.runner import Pipeline
from ledger.settings import Settings

from .helpers import (
    Publisher,
    ledger_cli,
    needs_embedded_services,
    services_of,
    specialization_stored,
    wait_for,
)
from .scenario import DS, PUBLISHED, at, enrolled, graded

pytestmark = pytest.mark.integration


def test_data_survives_stack_down_and_up(settings: Settings, publisher: Publisher) -> None:
    needs_embedded_services(settings, "stop")
    with Pipeline(settings, services_of(settings)):
        publisher.send(publisher.record("ledger.specialization.published.v1", DS, PUBLISHED, at(0)))
        wait_for(lambda: specialization_stored(settings, DS), 60, "the catalog")
        publisher.send(
            publisher.record("ledger.learner.enrolled.v1", "dot", enrolled("dot", "audit"), at(1)),
            publisher.record("ledger.course.graded.v1", "dot", graded("dot", "ds-7"), at(9)),
        )

        def shown() -> dict | None:
            result = ledger_cli(settings, "learner", "show", "dot", "--json", check=False)
            if result.returncode != 0:
                return None
            answer = json.loads(result.stdout)
            graded_courses = [c for e in answer["enrollments"] for c in e["courses"] if c["grade"]]
            return answer if graded_courses else None

        before = wait_for(shown, 60, "dot's progress")

    down = ledger_cli(settings, "stack", "down")
    assert "stopped" in down.stdout
    status = ledger_cli(settings, "stack", "status", check=False)
    assert status.returncode == 3, status.stdout
    ledger_cli(settings, "stack", "up")
    assert ledger_cli(settings, "stack", "status").returncode == 0

    after = json.loads(ledger_cli(settings, "learner", "show", "dot", "--json").stdout)
    assert after == before
