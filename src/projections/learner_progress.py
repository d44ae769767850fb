"""Learner progress: "where is this learner in each specialization they enrolled in?"

Per learner and enrollment: the curriculum version pinned, intent, whether the enrollment is
active, each pinned course's state and the capstone's (passed, paid, certified), identity status
and expiry, the specialization certificate if any, and the percentage complete (courses with a
live certificate out of courses plus capstone). Course states are kept per learner, not per
enrollment, because a course shared by two specializations counts for both. Specialization
titles come from the catalog events.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import Connection, Cursor
from pydantic import BaseModel, ConfigDict

from projections.events import LedgerEvent

NAME = "learner_progress"

DDL = """
CREATE TABLE IF NOT EXISTS lp_specializations (
    specialization_id text PRIMARY KEY,
    title text NOT NULL,
    partners text[] NOT NULL,
    language text NOT NULL,
    retired_at timestamptz
);
CREATE TABLE IF NOT EXISTS lp_learners (
    learner_id text PRIMARY KEY,
    registered_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    events bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS lp_enrollments (
    learner_id text NOT NULL,
    specialization_id text NOT NULL,
    enrollment_id text NOT NULL,
    curriculum_version int NOT NULL,
    intent text NOT NULL,
    courses text[] NOT NULL,
    capstone_course_id text NOT NULL,
    enrolled_at timestamptz NOT NULL,
    ended_at timestamptz,
    PRIMARY KEY (learner_id, specialization_id)
);
CREATE TABLE IF NOT EXISTS lp_courses (
    learner_id text NOT NULL,
    course_id text NOT NULL,
    grade numeric,
    passed boolean NOT NULL DEFAULT false,
    graded_at timestamptz,
    paid_by text[] NOT NULL DEFAULT '{}',
    certificate_id text,
    certified_at timestamptz,
    PRIMARY KEY (learner_id, course_id)
);
CREATE TABLE IF NOT EXISTS lp_certificates (
    certificate_id text PRIMARY KEY,
    learner_id text NOT NULL,
    kind text NOT NULL,
    subject text NOT NULL,
    enrollment_id text,
    verification_code text NOT NULL,
    earned_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE TABLE IF NOT EXISTS lp_verifications (
    learner_id text NOT NULL,
    event_id text NOT NULL,
    method text NOT NULL,
    verified_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (learner_id, event_id)
);
CREATE TABLE IF NOT EXISTS lp_identity_revocations (
    learner_id text NOT NULL,
    version bigint NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (learner_id, version)
);
CREATE TABLE IF NOT EXISTS lp_refusals (
    learner_id text NOT NULL,
    version bigint NOT NULL,
    at timestamptz NOT NULL,
    request text NOT NULL,
    subject text NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL,
    PRIMARY KEY (learner_id, version)
);
"""

Cur = Cursor[tuple[Any, ...]]


def _touch(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "UPDATE lp_learners SET updated_at = greatest(updated_at, %s), events = events + 1 "
        "WHERE learner_id = %s",
        (event.time, event.subject),
    )


def _course_row(cur: Cur, learner_id: str, course_id: str) -> None:
    cur.execute(
        "INSERT INTO lp_courses (learner_id, course_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (learner_id, course_id),
    )


def _refusal(
    cur: Cur, event: LedgerEvent, request: str, subject: str, reason: str, detail: str
) -> None:
    cur.execute(
        "INSERT INTO lp_refusals (learner_id, version, at, request, subject, reason, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (event.subject, event.version, event.time, request, subject, reason, detail),
    )


def on_specialization_published(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    cur.execute(
        "INSERT INTO lp_specializations (specialization_id, title, partners, language) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (specialization_id) DO UPDATE SET "
        "title = EXCLUDED.title, partners = EXCLUDED.partners, language = EXCLUDED.language",
        (d["specialization_id"], d["title"], list(d["partners"]), d["language"]),
    )


def on_specialization_retired(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "UPDATE lp_specializations SET retired_at = %s WHERE specialization_id = %s",
        (event.time, event.subject),
    )


def on_registered(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "INSERT INTO lp_learners (learner_id, registered_at, updated_at, events) "
        "VALUES (%s, %s, %s, 1) ON CONFLICT (learner_id) DO NOTHING",
        (event.subject, event.time, event.time),
    )


def on_enrolled(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    cur.execute(
        "INSERT INTO lp_enrollments (learner_id, specialization_id, enrollment_id,"
        " curriculum_version, intent, courses, capstone_course_id, enrolled_at, ended_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL) "
        "ON CONFLICT (learner_id, specialization_id) DO UPDATE SET "
        "enrollment_id = EXCLUDED.enrollment_id, curriculum_version = EXCLUDED.curriculum_version,"
        " intent = EXCLUDED.intent, courses = EXCLUDED.courses,"
        " capstone_course_id = EXCLUDED.capstone_course_id, enrolled_at = EXCLUDED.enrolled_at,"
        " ended_at = NULL",
        (
            event.subject,
            d["specialization_id"],
            f"{event.aggregate_id}:{event.version}",
            d["curriculum_version"],
            d["intent"],
            list(d["courses"]),
            d["capstone_course_id"],
            event.time,
        ),
    )
    _touch(cur, event)


def on_unenrolled(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "UPDATE lp_enrollments SET ended_at = %s WHERE learner_id = %s AND specialization_id = %s",
        (event.time, event.subject, event.data["specialization_id"]),
    )
    _touch(cur, event)


def on_intent_changed(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "UPDATE lp_enrollments SET intent = %s WHERE learner_id = %s AND specialization_id = %s",
        (event.data["intent"], event.subject, event.data["specialization_id"]),
    )
    _touch(cur, event)


def on_course_graded(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    _course_row(cur, event.subject, d["course_id"])
    # A pass is final (docs/rules.md); the grade shown is the latest in business time.
    cur.execute(
        "UPDATE lp_courses SET passed = passed OR %s,"
        " grade = CASE WHEN graded_at IS NULL OR graded_at <= %s THEN %s ELSE grade END,"
        " graded_at = greatest(graded_at, %s) WHERE learner_id = %s AND course_id = %s",
        (d["passed"], event.time, Decimal(d["grade"]), event.time, event.subject, d["course_id"]),
    )
    _touch(cur, event)


def on_capstone_grade_rejected(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    _refusal(
        cur,
        event,
        "capstone_grade",
        d["course_id"],
        d["reason"],
        "missing: " + "; ".join(d["missing"]),
    )
    _touch(cur, event)


def on_course_paid(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    _course_row(cur, event.subject, d["course_id"])
    cur.execute(
        "UPDATE lp_courses SET paid_by = array_append(paid_by, %s) "
        "WHERE learner_id = %s AND course_id = %s",
        (d["payment_id"], event.subject, d["course_id"]),
    )
    _touch(cur, event)


def on_aid_granted(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    _course_row(cur, event.subject, d["course_id"])
    cur.execute(
        "UPDATE lp_courses SET paid_by = array_append(paid_by, 'financial aid') "
        "WHERE learner_id = %s AND course_id = %s",
        (event.subject, d["course_id"]),
    )
    _touch(cur, event)


def on_payment_undone(cur: Cur, event: LedgerEvent) -> None:
    """A granted refund or a chargeback: the payment no longer pays its course."""
    cur.execute(
        "UPDATE lp_courses SET paid_by = array_remove(paid_by, %s) WHERE learner_id = %s",
        (event.data["payment_id"], event.subject),
    )
    _touch(cur, event)


def on_payment_refused(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    request = "refund" if event.kind.endswith("refund_denied") else "payment"
    _refusal(cur, event, request, d["payment_id"], d["reason"], d["detail"])
    _touch(cur, event)


def on_identity_verified(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    cur.execute(
        "INSERT INTO lp_verifications (learner_id, event_id, method, verified_at, expires_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            event.subject,
            f"{event.aggregate_id}:{event.version}",
            d["method"],
            event.time,
            datetime.fromisoformat(d["expires_at"]),
        ),
    )
    # A revocation already recorded with a later time ends this verification too (I1).
    cur.execute(
        "UPDATE lp_verifications v SET revoked_at = (SELECT min(r.at) FROM "
        "lp_identity_revocations r WHERE r.learner_id = v.learner_id AND r.at >= v.verified_at) "
        "WHERE v.learner_id = %s AND v.event_id = %s",
        (event.subject, f"{event.aggregate_id}:{event.version}"),
    )
    _touch(cur, event)


def on_identity_revoked(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "INSERT INTO lp_identity_revocations (learner_id, version, at) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (event.subject, event.version, event.time),
    )
    cur.execute(
        "UPDATE lp_verifications SET revoked_at = %s WHERE learner_id = %s "
        "AND verified_at <= %s AND (revoked_at IS NULL OR revoked_at > %s)",
        (event.time, event.subject, event.time, event.time),
    )
    _touch(cur, event)


def on_course_certified(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    cur.execute(
        "INSERT INTO lp_certificates (certificate_id, learner_id, kind, subject,"
        " verification_code, earned_at) VALUES (%s, %s, 'course', %s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (
            d["certificate_id"],
            event.subject,
            d["course_id"],
            d["verification_code"],
            datetime.fromisoformat(d["earned_at"]),
        ),
    )
    _course_row(cur, event.subject, d["course_id"])
    cur.execute(
        "UPDATE lp_courses SET certificate_id = %s, certified_at = %s "
        "WHERE learner_id = %s AND course_id = %s",
        (
            d["certificate_id"],
            datetime.fromisoformat(d["earned_at"]),
            event.subject,
            d["course_id"],
        ),
    )
    _touch(cur, event)


def on_specialization_certified(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    cur.execute(
        "INSERT INTO lp_certificates (certificate_id, learner_id, kind, subject, enrollment_id,"
        " verification_code, earned_at) VALUES (%s, %s, 'specialization', %s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (
            d["certificate_id"],
            event.subject,
            d["specialization_id"],
            d["enrollment_id"],
            d["verification_code"],
            datetime.fromisoformat(d["earned_at"]),
        ),
    )
    _touch(cur, event)


def on_certificate_revoked(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    cur.execute(
        "UPDATE lp_certificates SET revoked_at = %s, revoked_reason = %s WHERE certificate_id = %s",
        (event.time, d["reason"], d["certificate_id"]),
    )
    cur.execute(
        "UPDATE lp_courses SET certificate_id = NULL, certified_at = NULL "
        "WHERE learner_id = %s AND certificate_id = %s",
        (event.subject, d["certificate_id"]),
    )
    _touch(cur, event)


def on_request_refused(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    _refusal(cur, event, d["request"], d["subject"], d["reason"], d["detail"])
    _touch(cur, event)


HANDLERS = {
    "ledger.specialization.published": on_specialization_published,
    "ledger.specialization.retired": on_specialization_retired,
    "ledger.learner.registered": on_registered,
    "ledger.learner.enrolled": on_enrolled,
    "ledger.learner.unenrolled": on_unenrolled,
    "ledger.learner.intent_changed": on_intent_changed,
    "ledger.learner.course_graded": on_course_graded,
    "ledger.learner.capstone_grade_rejected": on_capstone_grade_rejected,
    "ledger.learner.course_paid": on_course_paid,
    "ledger.learner.aid_granted": on_aid_granted,
    "ledger.learner.refund_granted": on_payment_undone,
    "ledger.learner.payment_charged_back": on_payment_undone,
    "ledger.learner.payment_to_be_returned": on_payment_refused,
    "ledger.learner.refund_denied": on_payment_refused,
    "ledger.learner.identity_verified": on_identity_verified,
    "ledger.learner.identity_revoked": on_identity_revoked,
    "ledger.learner.course_certified": on_course_certified,
    "ledger.learner.specialization_certified": on_specialization_certified,
    "ledger.learner.certificate_revoked": on_certificate_revoked,
    "ledger.learner.request_refused": on_request_refused,
}


def apply(cur: Cur, event: LedgerEvent) -> None:
    """Apply one event; events this model does not need only count as activity."""
    handler = HANDLERS.get(event.kind)
    if handler is not None:
        handler(cur, event)
    elif event.kind.startswith("ledger.learner."):
        _touch(cur, event)


# Queries


class CourseState(BaseModel):
    model_config = ConfigDict(frozen=True)
    course_id: str
    is_capstone: bool
    passed: bool
    grade: Decimal | None
    graded_at: datetime | None
    paid: bool
    paid_by: list[str]
    certified: bool
    certificate_id: str | None
    certified_at: datetime | None


class SpecializationCertificate(BaseModel):
    model_config = ConfigDict(frozen=True)
    certificate_id: str
    verification_code: str
    earned_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None


class EnrollmentProgress(BaseModel):
    model_config = ConfigDict(frozen=True)
    specialization_id: str
    title: str
    partners: list[str]
    curriculum_version: int
    intent: str
    active: bool
    enrolled_at: datetime
    ended_at: datetime | None
    courses: list[CourseState]
    courses_certified: int
    courses_total: int
    percent_complete: float
    certificate: SpecializationCertificate | None


class Identity(BaseModel):
    model_config = ConfigDict(frozen=True)
    verified: bool
    valid_until: datetime | None
    revoked_at: datetime | None


class Refusal(BaseModel):
    model_config = ConfigDict(frozen=True)
    at: datetime
    request: str
    subject: str
    reason: str
    detail: str


class LearnerProgress(BaseModel):
    """The answer to `ledger learner show`."""

    model_config = ConfigDict(frozen=True)
    learner_id: str
    registered_at: datetime
    updated_at: datetime
    events: int
    identity: Identity
    enrollments: list[EnrollmentProgress]
    refusals: list[Refusal]


def _identity(cur: Cur, learner_id: str) -> Identity:
    """Identity as of the learner's latest business time: verified, until when, or revoked."""
    cur.execute(
        "SELECT v.verified_at, v.expires_at, v.revoked_at, l.updated_at FROM lp_verifications v "
        "JOIN lp_learners l USING (learner_id) WHERE learner_id = %s ORDER BY v.verified_at",
        (learner_id,),
    )
    rows = cur.fetchall()
    if not rows:
        return Identity(verified=False, valid_until=None, revoked_at=None)
    now = rows[0][3]
    valid = [min(e, r) if r else e for v, e, r, _ in rows if v <= now < (min(e, r) if r else e)]
    revoked = [r for _, _, r, _ in rows if r is not None]
    return Identity(
        verified=bool(valid),
        valid_until=max(valid) if valid else max(min(e, r) if r else e for _, e, r, _ in rows),
        revoked_at=max(revoked) if revoked else None,
    )


def learner_progress(conn: Connection[Any], learner_id: str) -> LearnerProgress | None:
    """Everything this model knows about one learner, or None if it has not seen them."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT registered_at, updated_at, events FROM lp_learners WHERE learner_id = %s",
            (learner_id,),
        )
        learner = cur.fetchone()
        if learner is None:
            return None
        cur.execute(
            "SELECT course_id, grade, passed, graded_at, paid_by, certificate_id, certified_at "
            "FROM lp_courses WHERE learner_id = %s",
            (learner_id,),
        )
        courses = {row[0]: row for row in cur.fetchall()}
        cur.execute(
            "SELECT enrollment_id, certificate_id, verification_code, earned_at, revoked_at,"
            " revoked_reason FROM lp_certificates WHERE learner_id = %s AND kind = "
            "'specialization'",
            (learner_id,),
        )
        spec_certs = {
            row[0]: SpecializationCertificate(
                certificate_id=row[1],
                verification_code=row[2],
                earned_at=row[3],
                revoked_at=row[4],
                revoked_reason=row[5],
            )
            for row in cur.fetchall()
        }
        cur.execute(
            "SELECT e.specialization_id, coalesce(s.title, e.specialization_id),"
            " coalesce(s.partners, '{}'), e.curriculum_version, e.intent, e.courses,"
            " e.capstone_course_id, e.enrolled_at, e.ended_at, e.enrollment_id "
            "FROM lp_enrollments e LEFT JOIN lp_specializations s USING (specialization_id) "
            "WHERE e.learner_id = %s ORDER BY e.enrolled_at, e.specialization_id",
            (learner_id,),
        )
        enrollments = []
        for (
            spec_id,
            title,
            partners,
            version,
            intent,
            pinned,
            capstone,
            since,
            ended,
            enrollment_id,
        ) in cur.fetchall():
            states = []
            for course_id in [*pinned, capstone]:
                row = courses.get(course_id)
                paid_by = list(row[4]) if row else []
                states.append(
                    CourseState(
                        course_id=course_id,
                        is_capstone=course_id == capstone,
                        passed=bool(row and row[2]),
                        grade=row[1] if row else None,
                        graded_at=row[3] if row else None,
                        paid=bool(paid_by),
                        paid_by=paid_by,
                        certified=bool(row and row[5]),
                        certificate_id=row[5] if row else None,
                        certified_at=row[6] if row else None,
                    )
                )
            certified = sum(1 for s in states if s.certified)
            enrollments.append(
                EnrollmentProgress(
                    specialization_id=spec_id,
                    title=title,
                    partners=list(partners),
                    curriculum_version=version,
                    intent=intent,
                    active=ended is None,
                    enrolled_at=since,
                    ended_at=ended,
                    courses=states,
                    courses_certified=certified,
                    courses_total=len(states),
                    percent_complete=round(100.0 * certified / len(states), 1),
                    certificate=spec_certs.get(enrollment_id),
                )
            )
        cur.execute(
            "SELECT at, request, subject, reason, detail FROM lp_refusals "
            "WHERE learner_id = %s ORDER BY version",
            (learner_id,),
        )
        refusals = [
            Refusal(at=a, request=r, subject=s, reason=why, detail=d)
            for a, r, s, why, d in cur.fetchall()
        ]
        identity = _identity(cur, learner_id)
    return LearnerProgress(
        learner_id=learner_id,
        registered_at=learner[0],
        updated_at=learner[1],
        events=learner[2],
        identity=identity,
        enrollments=enrollments,
        refusals=refusals,
    )


def learner_ids(conn: Connection[Any], limit: int = 100) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT learner_id FROM lp_learners ORDER BY learner_id LIMIT %s", (limit,))
        return [row[0] for row in cur.fetchall()]
