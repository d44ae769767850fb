"""What unit tests import: the shared `T0` and catalog builder, and the given-helpers of the
rule tests (a published catalog, learners in known states).

Fixtures live in `conftest.py` (pytest finds them there); everything a test module imports
comes from here or from `tests.scenarios`, never from a conftest.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from ledger.domain import Learner, Policy, Price, Specialization
from ledger.domain.learner_state import Intent

from ..scenarios import DS_COURSES, T0, published

PRICE = Decimal("49.00")
DAY = timedelta(days=1)


def catalog(
    specialization_id: str = "ds",
    courses: tuple[str, ...] = DS_COURSES,
    capstone: str = "ds-capstone",
    price: Price | None = None,
    policy: Policy | None = None,
) -> Specialization:
    return published(
        specialization_id,
        courses,
        capstone,
        T0 - 30 * DAY,
        title=specialization_id.upper(),
        price=price,
        policy=policy,
    )


def enrolled(
    spec: Specialization | None = None, at: datetime = T0, learner: Learner | None = None
) -> Learner:
    spec = spec or catalog()
    learner = learner or Learner.register("ada", at)
    learner.enroll(spec, spec.specialization_id, Intent.CERTIFICATE, at)
    return learner


def certify(learner: Learner, course: str, at: datetime, payment_id: str | None = None) -> None:
    """Pay and pass a course (identity is up to the test)."""
    learner.capture_payment(payment_id or f"pay-{course}", course, PRICE, "USD", at)
    learner.record_grade(course, Decimal("0.9"), True, at)


def events_of(learner: Learner, kind: type) -> list:
    return [e for e in learner.pending_events if isinstance(e, kind)]


def course_certificates(learner: Learner, live_only: bool = True) -> set[str]:
    return {
        c.subject
        for c in learner.certificates.values()
        if c.kind == "course" and (c.is_live or not live_only)
    }


def specialization_certificates(learner: Learner, live_only: bool = True) -> list:
    return [
        c
        for c in learner.certificates.values()
        if c.kind == "specialization" and (c.is_live or not live_only)
    ]
