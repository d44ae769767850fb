"""Tamper evidence: every learner event links to the previous one's hash; upcasting keeps it."""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

from ledger.application import Ledger
from ledger.domain import Learner
from ledger.domain.chain import GENESIS, chain_hash, event_data, hash_of_event
from ledger.domain.learner_state import Intent
from ledger.outbound import event_type

from .helpers import DAY, T0, catalog


def history(ledger: Ledger, learner_id: str) -> list:
    learner = ledger.get_learner(learner_id)
    assert learner is not None
    return list(ledger.events.get(learner.id))


def test_each_event_carries_the_hash_of_the_one_before(ledger: Ledger) -> None:
    ledger.publish_specialization(
        specialization_id="ds",
        title="DS",
        partners=("JHU",),
        language="en",
        courses=("a", "b", "c"),
        capstone_course_id="cap",
        at=T0,
    )
    with ledger.session() as session:
        session.enroll("ada", "ds", Intent.CERTIFICATE, T0)
        session.record_grade("ada", "a", Decimal("0.9"), True, T0 + DAY)
        session.verify_identity("ada", "id", None, T0 + DAY)
    events = history(ledger, "ada")
    assert len(events) == 4
    assert events[0].previous_hash == GENESIS
    for before, after in itertools.pairwise(events):
        assert after.previous_hash == hash_of_event(before)
    learner = ledger.get_learner("ada")
    assert learner is not None
    assert learner.chain_head == hash_of_event(events[-1])


def test_the_hash_is_over_the_canonical_form_so_any_edit_shows(ledger: Ledger) -> None:
    with ledger.session() as session:
        session.record_grade("ada", "a", Decimal("0.4"), False, T0)
    _, graded = history(ledger, "ada")
    original = hash_of_event(graded)
    data = event_data(graded)
    event_id = f"{graded.originator_id}:{graded.originator_version}"
    recorded = graded.timestamp.isoformat()
    assert chain_hash(event_id, "ledger.learner.course_graded", recorded, data) == original
    edited = {**data, "passed": True}
    assert chain_hash(event_id, "ledger.learner.course_graded", recorded, edited) != original
    moved = f"{graded.originator_id}:{graded.originator_version + 1}"
    assert chain_hash(moved, "ledger.learner.course_graded", recorded, data) != original


def test_registered_v1_is_upcast_to_v2_and_keeps_its_hash(ledger: Ledger) -> None:
    learner = Learner.register("ada", T0)
    learner.enroll(catalog(), "ds", Intent.AUDIT, T0 + DAY)
    registered, enrolled = learner.collect_events()
    stored = ledger.mapper.to_stored_event(registered)
    # Rewrite the stored state the way release 1 wrote it: no class_version, no new field.
    state = ledger.mapper.transcoder.decode(stored.state)
    del state["first_message_type"]
    del state["class_version"]
    v1 = replace(stored, state=ledger.mapper.transcoder.encode(state))

    upcast = ledger.mapper.to_domain_event(v1)
    assert isinstance(upcast, Learner.Registered)
    assert upcast.first_message_type is None
    assert event_type(type(upcast)) == "ledger.learner.registered.v2"
    assert hash_of_event(upcast) == hash_of_event(registered)
    assert enrolled.previous_hash == hash_of_event(upcast)
