"""The read models' handlers against a stream with known answers, in memory (no services).

The handlers only change rows in a `Rows`; here the whole scenario is one batch that starts
from empty tables, which is what a rebuild's first batch sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from ledger.application import Ledger
from projections.model import ReadModel
from projections.read_models import certificates, learner_progress, payments, retention
from projections.rows import Rows

from .. import read_scenario
from ..scenarios import DS


@pytest.fixture(scope="module")
def applied() -> Iterator[dict[str, Rows]]:
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    read_scenario.build(ledger)
    events = read_scenario.events(ledger)
    ledger.close()
    models: list[ReadModel] = [
        learner_progress.MODEL,
        certificates.MODEL,
        payments.MODEL,
        retention.MODEL,
    ]
    result = {}
    for model in models:
        rows = model.rows()
        for event in events:
            model.apply(rows, event)
        result[model.name] = rows
    yield result


def test_payments_show_refund_and_duplicate(applied: dict[str, Rows]) -> None:
    rows = applied["payments"]
    states = {(r["learner_id"], r["payment_id"]): r for r in rows.where("payments")}
    assert states[("bob", "bob-1")]["state"] == "refunded"
    assert states[("bob", "bob-2")]["state"] == "captured"
    returned = states[("bob", "bob-2b")]
    assert (returned["state"], returned["reason"]) == ("to_be_returned", "course_already_paid")
    assert returned["amount"] == Decimal("49.00")
    ada = [r for r in states.values() if r["learner_id"] == "ada"]
    assert len(ada) == 10
    assert {r["state"] for r in ada} == {"captured"}


def test_certificates_valid_and_revoked(applied: dict[str, Rows]) -> None:
    rows = applied["certificates"]
    by_learner = {}
    for row in rows.where("certificates"):
        by_learner.setdefault(row["learner_id"], []).append(row)
    (spec,) = [r for r in by_learner["ada"] if r["kind"] == "specialization"]
    assert spec["status"] == "valid"
    assert spec["subject"] == DS
    assert len(spec["evidence"]) == 11
    assert len(by_learner["ada"]) == 11  # ten course certificates and the specialization's
    (revoked,) = by_learner["cy"]
    assert revoked["status"] == "revoked"
    assert revoked["revoked_reason"] == "plagiarism"
    assert revoked["revoked_by_trust_and_safety"] is True
    assert "bob" not in by_learner


def test_learner_progress_rows(applied: dict[str, Rows]) -> None:
    rows = applied["learner_progress"]
    bob_courses = {r["course_id"]: r for r in rows.where("courses", learner_id="bob")}
    assert bob_courses["ds-1"]["paid_by"] == ()  # refunded
    assert bob_courses["ds-2"]["paid_by"] == ("bob-2",)  # the duplicate does not count
    assert bob_courses["ds-3"]["passed"] is True
    assert bob_courses["ds-3"]["paid_by"] == ()
    cy_courses = {r["course_id"]: r for r in rows.where("courses", learner_id="cy")}
    assert cy_courses["ds-1"]["certificate_id"] is None  # revoked
    refusals = list(rows.where("refusals", learner_id="bob"))
    assert [(r["request"], r["reason"]) for r in refusals] == [("payment", "course_already_paid")]
    learners = {r["learner_id"]: r for r in rows.where("learners")}
    assert set(learners) == {"ada", "bob", "cy"}
    assert learners["bob"]["events"] == 7
    (spec,) = rows.where("specializations")
    assert spec["title"] == "Data Science"


def test_retention_funnel(applied: dict[str, Rows]) -> None:
    funnel = applied["retention"].deltas("funnel")
    assert funnel == {
        (DS, date(2026, 1, 1)): {
            "registered": 3,
            "with_intent": 2,  # ada and bob enrolled for a certificate; cy audits
            "payers": 3,  # bob's refund does not undo that he paid
            "completed": 1,
            "completed_with_intent": 1,
            "completed_payers": 1,
        }
    }


def test_a_row_is_put_whole(applied: dict[str, Rows]) -> None:
    rows = Rows([payments.PAYMENTS])
    assert rows.get("payments", "bob", "bob-1") is None
    with pytest.raises(KeyError, match="lacks"):
        rows.put("payments", {"learner_id": "bob", "payment_id": "x"})
    assert applied["payments"].get("payments", "bob", "bob-1") is not None
