"""The "why" answer: each missing item in words support staff can read out."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from projections.read_models.eligibility import explain
from projections.read_models.learner_progress import (
    CourseState,
    EnrollmentProgress,
    Identity,
    LearnerProgress,
    SpecializationCertificate,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def course(
    cid: str,
    *,
    passed: bool = False,
    paid: bool = False,
    certified: bool = False,
    grade: str | None = None,
    capstone: bool = False,
) -> CourseState:
    return CourseState(
        course_id=cid,
        is_capstone=capstone,
        passed=passed,
        grade=Decimal(grade) if grade else None,
        graded_at=NOW if grade else None,
        paid=paid,
        paid_by=["p"] if paid else [],
        certified=certified,
        certificate_id="c" if certified else None,
        certified_at=NOW if certified else None,
    )


def progress(
    courses: list[CourseState],
    identity: Identity,
    certificate: SpecializationCertificate | None = None,
) -> LearnerProgress:
    enrollment = EnrollmentProgress(
        specialization_id="ds",
        title="Data Science",
        partners=["JHU"],
        curriculum_version=1,
        intent="certificate",
        active=True,
        enrolled_at=NOW,
        ended_at=None,
        courses=courses,
        courses_certified=sum(c.certified for c in courses),
        courses_total=len(courses),
        percent_complete=0.0,
        certificate=certificate,
    )
    return LearnerProgress(
        learner_id="ada",
        registered_at=NOW,
        updated_at=NOW,
        events=1,
        identity=identity,
        enrollments=[enrollment],
        refusals=[],
    )


def test_every_missing_item_is_named() -> None:
    expired = Identity(
        verified=False, valid_until=datetime(2026, 3, 1, tzinfo=UTC), revoked_at=None
    )
    p = progress(
        [
            course("ds-1", passed=True, paid=True, certified=True),
            course("ds-4", passed=True, grade="0.9"),
            course("ds-7", grade="0.5"),
            course("ds-8"),
            course("ds-capstone", capstone=True),
        ],
        expired,
    )
    answer = explain(p, p.enrollments[0])
    assert not answer.eligible
    assert [m.message for m in answer.missing] == [
        "course ds-4 passed but not paid",
        "course ds-7 graded 0.5, not passed yet",
        "course ds-8 not passed yet",
        "capstone locked: ds-4, ds-7, ds-8 not certified",
        "identity expired on 2026-03-01: a new verification is needed",
    ]
    assert [m.reason for m in answer.missing] == [
        "not_paid",
        "not_passed",
        "not_passed",
        "capstone_locked",
        "identity_expired",
    ]


def test_a_live_certificate_means_certified() -> None:
    certificate = SpecializationCertificate(
        certificate_id="x",
        verification_code="CODE",
        earned_at=NOW,
        revoked_at=None,
        revoked_reason=None,
    )
    ok = Identity(verified=True, valid_until=datetime(2027, 1, 1, tzinfo=UTC), revoked_at=None)
    p = progress(
        [
            course("ds-1", passed=True, paid=True, certified=True),
            course("ds-capstone", capstone=True, passed=True, paid=True, certified=True),
        ],
        ok,
        certificate,
    )
    answer = explain(p, p.enrollments[0])
    assert (answer.eligible, answer.certified, answer.verification_code) == (True, True, "CODE")
    assert answer.missing == []


def test_waiting_only_for_identity() -> None:
    never = Identity(verified=False, valid_until=None, revoked_at=None)
    p = progress(
        [
            course("ds-1", passed=True, paid=True),
            course("ds-capstone", capstone=True, passed=True, paid=True),
        ],
        never,
    )
    answer = explain(p, p.enrollments[0])
    assert [m.reason for m in answer.missing] == [
        "awaiting_identity",
        "awaiting_identity",  # a capstone already passed is not locked
        "identity_not_verified",
    ]
