"""What every test tier shares: the one `T0`, the one catalog builder, and the rulebook's
acceptance scenario, runnable on any `Ledger` (in memory or on PostgreSQL).

`catalog_data` is a specialization as its publish message carries it; `published` the same as
the `Specialization` aggregate the rules work on: every tier builds its catalog from these.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.application import Ledger
from ledger.domain import Learner, Policy, Price, Specialization
from ledger.domain.learner_state import Intent

#: The moment every test's business time counts from.
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DS = "jhu-data-science"
DS_COURSES = tuple(f"ds-{n}" for n in range(1, 10))
DS_CAPSTONE = "ds-capstone"
PARTNERS = ("Johns Hopkins University",)


def catalog_data(
    specialization_id: str = DS,
    *,
    title: str = "Data Science",
    courses: tuple[str, ...] | list[str] = DS_COURSES,
    capstone: str = DS_CAPSTONE,
) -> dict[str, Any]:
    """The `data` of a `ledger.specialization.published.v1` message."""
    return {
        "specialization_id": specialization_id,
        "title": title,
        "partners": list(PARTNERS),
        "language": "en",
        "courses": list(courses),
        "capstone_course_id": capstone,
    }


def published(
    specialization_id: str = "ds",
    courses: tuple[str, ...] = DS_COURSES,
    capstone: str = DS_CAPSTONE,
    at: datetime = T0,
    *,
    title: str = "Data Science",
    price: Price | None = None,
    policy: Policy | None = None,
) -> Specialization:
    """The same specialization as the aggregate: what the rules are given."""
    data = catalog_data(specialization_id, title=title, courses=courses, capstone=capstone)
    return Specialization.publish(
        specialization_id=specialization_id,
        title=data["title"],
        partners=tuple(data["partners"]),
        language=data["language"],
        courses=tuple(data["courses"]),
        capstone_course_id=data["capstone_course_id"],
        price=price or Price(),
        policy=policy or Policy(),
        at=at,
    )


@dataclass
class Outcome:
    learner: Learner
    rejected_capstone: Learner.CapstoneGradeRejected
    verification_event_id: str


def data_science_learner(ledger: Ledger, seed: int, learner_id: str = "ada") -> Outcome:
    """Shuffled passes, payments at random moments, identity after the last grade, capstone."""
    rng = random.Random(seed)
    data = catalog_data(DS)
    ledger.publish_specialization(
        specialization_id=DS,
        title=data["title"],
        partners=tuple(data["partners"]),
        language=data["language"],
        courses=tuple(data["courses"]),
        capstone_course_id=data["capstone_course_id"],
        at=T0,
    )
    hours = iter(range(1, 10_000))
    with ledger.session() as s:
        s.enroll(learner_id, DS, Intent.CERTIFICATE, T0 + timedelta(hours=next(hours)))
    steps: list[tuple[str, str]] = [("pass", c) for c in rng.sample(DS_COURSES, 9)]
    for course in (*DS_COURSES, DS_CAPSTONE):
        steps.insert(rng.randint(0, len(steps)), ("pay", course))
    with ledger.session() as s:
        for kind, course in steps:
            at = T0 + timedelta(hours=next(hours))
            if kind == "pass":
                s.record_grade(learner_id, course, Decimal("0.85"), True, at)
            else:
                s.capture_payment(learner_id, f"pay-{course}", course, Decimal("49.00"), "USD", at)
    capstone_at = T0 + timedelta(hours=next(hours))
    with ledger.session() as s:  # too early: identity not verified yet
        s.record_grade(learner_id, DS_CAPSTONE, Decimal("0.92"), True, capstone_at)
    with ledger.session() as s:
        s.verify_identity(learner_id, "government_id", None, T0 + timedelta(hours=next(hours)))
    with ledger.session() as s:  # the same grade again, now that everything else holds
        s.record_grade(
            learner_id, DS_CAPSTONE, Decimal("0.92"), True, T0 + timedelta(hours=next(hours))
        )
    learner = ledger.get_learner(learner_id)
    assert learner is not None
    events = list(ledger.events.get(learner.id))
    (rejected,) = [e for e in events if isinstance(e, Learner.CapstoneGradeRejected)]
    (verified,) = [e for e in events if isinstance(e, Learner.IdentityVerified)]
    return Outcome(learner, rejected, f"{learner.id}:{verified.originator_version}")


def check_data_science_outcome(outcome: Outcome) -> None:
    """The acceptance item of the rulebook issue, as assertions."""
    learner = outcome.learner
    spec_certs = [c for c in learner.certificates.values() if c.kind == "specialization"]
    assert len(spec_certs) == 1
    (cert,) = spec_certs
    course_certs = [learner.live_course_certificate(c) for c in (*DS_COURSES, DS_CAPSTONE)]
    assert all(c is not None for c in course_certs)
    assert cert.course_certificate_ids == tuple(c.certificate_id for c in course_certs if c)
    assert cert.evidence == (
        *(c.event_id for c in course_certs if c),
        outcome.verification_event_id,
    )
    assert len(cert.evidence) == 11
    assert cert.curriculum_version == 1
    rejected = outcome.rejected_capstone
    assert rejected.reason == "capstone_courses_not_certified"
    assert list(rejected.missing) == [f"{c}: identity not verified" for c in DS_COURSES]
