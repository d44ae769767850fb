"""A scenario stream for the read models, with answers known in advance.

Three learners on the Data Science specialization, all enrolled in January 2026:
- ada completes it (the rulebook's acceptance learner): a valid specialization certificate;
- bob pays ds-1 and has it refunded, pays ds-2 twice (the second payment is to be returned),
  and passes ds-3 without paying for it;
- cy earns the ds-1 course certificate, which trust & safety then revokes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from ledger.application import Ledger
from ledger.broker import Record
from ledger.domain.learner_state import Intent
from ledger.outbound import Relayed, subject_of, to_record
from projections.events import LedgerEvent, read_event

from .scenarios import DS, T0, data_science_learner

AT = T0 + timedelta(days=2)


def build(ledger: Ledger) -> None:
    """Run the scenario through `ledger` (in memory or on PostgreSQL)."""
    data_science_learner(ledger, seed=5)
    with ledger.session() as s:
        s.enroll("bob", DS, Intent.CERTIFICATE, AT)
        s.capture_payment("bob", "bob-1", "ds-1", Decimal("49.00"), "USD", AT + timedelta(hours=1))
        s.capture_payment("bob", "bob-2", "ds-2", Decimal("49.00"), "USD", AT + timedelta(hours=2))
        s.capture_payment("bob", "bob-2b", "ds-2", Decimal("49.00"), "USD", AT + timedelta(hours=3))
        s.record_grade("bob", "ds-3", Decimal("0.9"), True, AT + timedelta(hours=4))
    with ledger.session() as s:
        s.request_refund("bob", "bob-1", AT + timedelta(days=1))
    with ledger.session() as s:
        s.enroll("cy", DS, Intent.AUDIT, AT)
        s.verify_identity("cy", "government_id", None, AT + timedelta(hours=1))
        s.capture_payment("cy", "cy-1", "ds-1", Decimal("49.00"), "USD", AT + timedelta(hours=2))
        s.record_grade("cy", "ds-1", Decimal("0.8"), True, AT + timedelta(hours=3))
    cy = ledger.get_learner("cy")
    assert cy is not None
    (certificate,) = cy.certificates.values()
    with ledger.session() as s:
        s.revoke_certificate("cy", certificate.certificate_id, "plagiarism", AT + timedelta(days=3))


def records(ledger: Ledger, topic: str = "ledger.events") -> Iterator[Any]:
    """Every stored event as the relay would publish it, in notification order, in one page."""
    subjects: dict[Any, str] = {}
    for stored in ledger.recorder.select_notifications(start=1, limit=1_000_000):
        event = ledger.mapper.to_domain_event(stored)
        if event.originator_id not in subjects:
            subjects[event.originator_id] = subject_of(event)
        yield to_record(topic, event, subjects[event.originator_id], Relayed(stored.id, 0))


def events(ledger: Ledger) -> list[LedgerEvent]:
    """The scenario's events as the projections read them back."""
    return [
        read_event(Record(r.topic, 0, n, r.key, r.value, list(r.headers)))
        for n, r in enumerate(records(ledger))
    ]
