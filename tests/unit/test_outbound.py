"""Stored events become plain-JSON binary-mode CloudEvents with a deterministic identity."""

from __future__ import annotations

import json
from decimal import Decimal

from ledger.domain import Learner
from ledger.domain.chain import hash_of_event
from ledger.outbound import subject_of, to_record

from .helpers import T0


def test_an_event_becomes_a_binary_mode_cloudevent() -> None:
    learner = Learner.register("ada", T0)
    learner.record_grade("ds-1", Decimal("0.85"), True, T0)
    registered, graded = learner.collect_events()
    record = to_record("ledger.events", graded, subject_of(registered))
    headers = {k: (v or b"").decode() for k, v in record.headers}
    assert record.key == str(learner.id).encode()
    assert headers["ce_id"] == f"{learner.id}:2"
    assert headers["ce_type"] == "ledger.learner.course_graded.v1"
    assert headers["ce_subject"] == "ada"
    assert headers["ce_time"] == T0.isoformat()
    assert headers["ce_sequence"] == "2"
    assert json.loads(record.value or b"") == {
        "course_id": "ds-1",
        "grade": "0.85",
        "passed": True,
        "at": T0.isoformat(),
        "previous_hash": hash_of_event(registered),
    }
