"""The read scenario's events as xAPI statements, without services: the verbs, the account
actor with no personal data, ids derived from the events (the same event, the same statement),
and a revocation voiding exactly the `earned` statement of its certificate."""

from __future__ import annotations

from collections import Counter

from bridges.xapi.statements import VERBS, Statements, earned_id, statement_id
from ledger.application import Ledger
from tests import read_scenario

HOME = "https://ledger.example.org"


def scenario_statements() -> list[dict]:  # type: ignore[type-arg]
    ledger = Ledger()
    read_scenario.build(ledger)
    statements = Statements(HOME)
    return [s for e in read_scenario.events(ledger) if (s := statements.of(e)) is not None]


def test_the_scenarios_events_become_statements_an_lrs_can_take() -> None:
    statements = scenario_statements()
    verbs = Counter(s["verb"]["display"]["en-US"] for s in statements)
    # ada, bob, cy enrolled; ada passed 9 courses and the capstone, bob ds-3, cy ds-1; ada
    # earned ten course certificates and the specialization, cy one; cy's was revoked.
    assert verbs == Counter(registered=3, passed=12, earned=12, voided=1)
    assert all(s["verb"]["id"] == VERBS[s["verb"]["display"]["en-US"]] for s in statements)
    assert {s["actor"]["account"]["homePage"] for s in statements} == {HOME}
    assert {s["actor"]["account"]["name"] for s in statements} == {"ada", "bob", "cy"}
    assert len({s["id"] for s in statements}) == len(statements)
    [voiding] = [s for s in statements if s["verb"]["display"]["en-US"] == "voided"]
    earned = {s["id"] for s in statements if s["verb"]["display"]["en-US"] == "earned"}
    assert voiding["object"] == {"objectType": "StatementRef", "id": voiding["object"]["id"]}
    assert voiding["object"]["id"] in earned
    passed = next(s for s in statements if s["verb"]["display"]["en-US"] == "passed")
    assert passed["result"]["success"] is True and 0 < passed["result"]["score"]["scaled"] <= 1
    assert passed["object"]["id"].startswith(f"{HOME}/activities/courses/")


def test_the_same_event_always_makes_the_same_statement() -> None:
    # Two ledgers told the same story: every statement the same, but those that name a
    # certificate (its id is drawn at random when it is earned).
    def by_event(statements: list[dict]) -> dict:  # type: ignore[type-arg]
        return {
            s["context"]["extensions"][f"{HOME}/xapi/ledger-event"]: s
            for s in statements
            if s["verb"]["display"]["en-US"] not in ("earned", "voided")
        }

    first, second = by_event(scenario_statements()), by_event(scenario_statements())
    assert first and first == second
    assert earned_id("c-1") == earned_id("c-1") != statement_id("c-1")
