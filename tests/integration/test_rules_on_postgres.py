"""Representative rule tests with the `Ledger` stored in the real PostgreSQL.

They prove what the in-memory tests cannot: that every event type survives the round trip
through eventsourcing's PostgreSQL store (Decimal, datetimes, tuples, None), that a learner
rebuilt from PostgreSQL decides exactly like the live one, and that the hash chain holds on
what is stored.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from ledger.application import Ledger
from ledger.domain import Learner, Reason, learner_aggregate_id
from ledger.domain.chain import GENESIS, hash_of_event
from ledger.domain.learner_state import Intent, PaymentState
from ledger.settings import Settings

from ..scenarios import DS, DS_COURSES, T0, check_data_science_outcome, data_science_learner
from .helpers import open_ledger

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    app = open_ledger(settings)
    yield app
    app.close()


def fresh(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


def test_data_science_acceptance_scenario_on_postgres(ledger: Ledger) -> None:
    outcome = data_science_learner(ledger, seed=7, learner_id=fresh("ada"))
    check_data_science_outcome(outcome)
    events = list(ledger.events.get(outcome.learner.id))
    assert events[0].previous_hash == GENESIS
    for before, after in itertools.pairwise(events):
        assert after.previous_hash == hash_of_event(before)


def test_P4_refund_window_boundary_on_postgres(ledger: Ledger) -> None:
    data_science_learner(ledger, seed=1, learner_id=fresh("warmup"))  # publishes the catalog
    learner_id = fresh("bo")
    with ledger.session() as s:
        s.enroll(learner_id, DS, Intent.CERTIFICATE, T0)
        s.capture_payment(learner_id, "p-in", DS_COURSES[0], Decimal("49.00"), "USD", T0)
        s.capture_payment(learner_id, "p-out", DS_COURSES[1], Decimal("49.00"), "USD", T0)
    with ledger.session() as s:
        s.request_refund(learner_id, "p-in", T0 + timedelta(days=14))
        s.request_refund(learner_id, "p-out", T0 + timedelta(days=15))
    learner = ledger.get_learner(learner_id)
    assert learner is not None
    assert learner.payments["p-in"].state is PaymentState.REFUNDED
    assert learner.payments["p-out"].state is PaymentState.COUNTED
    denied = [e for e in ledger.events.get(learner.id) if isinstance(e, Learner.RefundDenied)]
    assert [e.reason for e in denied] == [Reason.REFUND_WINDOW_CLOSED]


def test_P5_chargeback_revokes_and_reevaluates_on_postgres(ledger: Ledger) -> None:
    outcome = data_science_learner(ledger, seed=3, learner_id=fresh("cy"))
    learner_id = outcome.learner.learner_id
    with ledger.session() as s:
        s.charge_back(learner_id, f"pay-{DS_COURSES[4]}", T0 + timedelta(days=300))
    learner = ledger.get_learner(learner_id)
    assert learner is not None
    assert learner.live_course_certificate(DS_COURSES[4]) is None
    spec_certs = [c for c in learner.certificates.values() if c.kind == "specialization"]
    assert [c.revoked_reason for c in spec_certs] == [Reason.COURSE_CERTIFICATE_REVOKED]


def test_E0_unknown_learner_payment_and_refund_are_recorded_on_postgres(ledger: Ledger) -> None:
    learner_id = fresh("zed")
    with ledger.session() as s:
        s.capture_payment(learner_id, "p1", "nowhere-101", Decimal("49.00"), "USD", T0)
        s.request_refund(learner_id, "p2", T0)
    learner = ledger.get_learner(learner_id)
    assert learner is not None
    kinds = [type(e).__name__ for e in ledger.events.get(learner.id)]
    assert kinds == ["Registered", "PaymentToBeReturned", "RefundDenied"]


@pytest.mark.parametrize("pipelined_max", [0, 250])
def test_a_batch_behind_the_stored_intake_position_commits_nothing(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, pipelined_max: int
) -> None:
    """Two intakes racing for a partition: the one whose batch ends at or before where the
    other has already committed must store nothing (its events, accepted ids, position),
    whether its statements go one by one or together in pipeline mode."""
    from eventsourcing.persistence import IntegrityError

    from ledger import store
    from ledger.store import AcceptedMessage, IntakeBookkeeping, IntakePosition

    monkeypatch.setattr(store, "PIPELINED_MAX", pipelined_max)
    data_science_learner(ledger, seed=1, learner_id=fresh("warmup"))  # publishes the catalog
    topic = fresh("intake")

    def batch(learner_id: str, offset: int) -> IntakeBookkeeping:
        return IntakeBookkeeping(
            positions=[IntakePosition(topic, 0, offset)],
            accepted=[AcceptedMessage("test", learner_id, "d", "enroll", topic, 0, offset - 1)],
        )

    ahead, behind = fresh("ahead"), fresh("behind")
    with ledger.session() as s:
        s.enroll(ahead, DS, Intent.CERTIFICATE, T0)
        s.commit(intake=batch(ahead, 10))
    session = ledger.session()
    session.enroll(behind, DS, Intent.CERTIFICATE, T0)
    with pytest.raises(IntegrityError, match=r"already at or past offset 10"):
        session.commit(intake=batch(behind, 10))
    recorder = ledger.ledger_recorder
    assert recorder.intake_positions(topic) == {0: 10}
    assert recorder.accepted_digests([("test", ahead), ("test", behind)]) == {("test", ahead): "d"}
    assert ledger.load_many([learner_aggregate_id(behind)]) == {}
