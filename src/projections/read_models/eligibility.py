"""Certificate eligibility: "why has she no certificate yet?", answered item by item.

Derived at query time from the learner-progress model rather than kept in tables of its own,
so it can never disagree with what `learner show` says. The learner's latest business time is
"now" for identity expiry, as it is for the progress view. Each missing item names the course
(if any), a stable reason code and a sentence support staff can read out:
"course ds-4 passed but not paid", "identity expired on 2026-03-01",
"capstone locked: ds-7, ds-8 not certified".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection
from pydantic import BaseModel, ConfigDict

from projections.read_models.learner_progress import (
    CourseState,
    EnrollmentProgress,
    Identity,
    LearnerProgress,
    learner_progress,
)


class Missing(BaseModel):
    """One thing standing between the learner and the specialization certificate."""

    model_config = ConfigDict(frozen=True)
    course_id: str | None
    reason: str
    message: str


class Eligibility(BaseModel):
    """The answer to `ledger learner why LEARNER SPECIALIZATION`."""

    model_config = ConfigDict(frozen=True)
    learner_id: str
    specialization_id: str
    title: str
    as_of: datetime
    eligible: bool
    certified: bool
    verification_code: str | None
    percent_complete: float
    missing: list[Missing]


class NotEnrolledError(LookupError):
    """The learner exists but never enrolled in that specialization."""


def _identity_missing(identity: Identity) -> Missing | None:
    if identity.verified:
        return None
    if identity.revoked_at is not None and (
        identity.valid_until is None or identity.revoked_at <= identity.valid_until
    ):
        day = identity.revoked_at.date().isoformat()
        return Missing(
            course_id=None,
            reason="identity_revoked",
            message=f"identity revoked on {day}: a new verification is needed",
        )
    if identity.valid_until is not None:
        day = identity.valid_until.date().isoformat()
        return Missing(
            course_id=None,
            reason="identity_expired",
            message=f"identity expired on {day}: a new verification is needed",
        )
    return Missing(course_id=None, reason="identity_not_verified", message="identity not verified")


def _course_missing(course: CourseState, identity_ok: bool) -> Missing | None:
    name = "capstone" if course.is_capstone else "course"
    cid = course.course_id
    if course.certified:
        return None
    if not course.passed:
        if course.grade is not None:
            return Missing(
                course_id=cid,
                reason="not_passed",
                message=f"{name} {cid} graded {course.grade}, not passed yet",
            )
        return Missing(course_id=cid, reason="not_passed", message=f"{name} {cid} not passed yet")
    if not course.paid:
        return Missing(
            course_id=cid, reason="not_paid", message=f"{name} {cid} passed but not paid"
        )
    if not identity_ok:
        return Missing(
            course_id=cid,
            reason="awaiting_identity",
            message=f"{name} {cid} passed and paid; certified once identity is verified",
        )
    return Missing(
        course_id=cid,
        reason="not_certified",
        message=f"{name} {cid} passed and paid but not certified",
    )


def explain(progress: LearnerProgress, enrollment: EnrollmentProgress) -> Eligibility:
    """What this enrollment still lacks for its specialization certificate (pure)."""
    certificate = enrollment.certificate
    certified = certificate is not None and certificate.revoked_at is None
    missing: list[Missing] = []
    if not certified:
        if not enrollment.active and enrollment.ended_at is not None:
            day = enrollment.ended_at.date().isoformat()
            missing.append(
                Missing(course_id=None, reason="not_enrolled", message=f"unenrolled on {day}")
            )
        identity = _identity_missing(progress.identity)
        courses = [c for c in enrollment.courses if not c.is_capstone]
        capstone = next(c for c in enrollment.courses if c.is_capstone)
        for course in courses:
            item = _course_missing(course, identity is None)
            if item is not None:
                missing.append(item)
        uncertified = [c.course_id for c in courses if not c.certified]
        if not capstone.certified:
            if uncertified and enrollment.capstone_requires_all_courses and not capstone.passed:
                missing.append(
                    Missing(
                        course_id=capstone.course_id,
                        reason="capstone_locked",
                        message=f"capstone locked: {', '.join(uncertified)} not certified",
                    )
                )
            else:
                item = _course_missing(capstone, identity is None)
                if item is not None:
                    missing.append(item)
        if identity is not None:
            missing.append(identity)
    return Eligibility(
        learner_id=progress.learner_id,
        specialization_id=enrollment.specialization_id,
        title=enrollment.title,
        as_of=progress.updated_at,
        eligible=certified or not missing,
        certified=certified,
        verification_code=certificate.verification_code if certified and certificate else None,
        percent_complete=enrollment.percent_complete,
        missing=missing,
    )


def eligibility(
    conn: Connection[Any], learner_id: str, specialization_id: str
) -> Eligibility | None:
    """The learner's eligibility in that specialization; None if the learner is unknown.

    Raises `NotEnrolledError` if the learner never enrolled in it.
    """
    progress = learner_progress(conn, learner_id)
    if progress is None:
        return None
    for enrollment in progress.enrollments:
        if enrollment.specialization_id == specialization_id:
            return explain(progress, enrollment)
    enrolled = ", ".join(e.specialization_id for e in progress.enrollments) or "none"
    raise NotEnrolledError(
        f"learner {learner_id!r} never enrolled in {specialization_id!r} (enrolled in: {enrolled})"
    )
