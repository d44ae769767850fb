"""Learner progress: "where is this learner in each specialization they enrolled in?"

Per learner and enrollment: the curriculum version pinned, intent, whether the enrollment is
active, each pinned course's state and the capstone's (passed, paid, certified), identity status
and expiry, the specialization certificate if any, and the percentage complete (courses with a
live certificate out of courses plus capstone). Course states are kept per learner, not per
enrollment, because a course shared by two specializations counts for both. Specialization
titles come from the catalog events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import ClientCursor, Connection, Cursor
from psycopg.sql import SQL, Composed, Identifier
from pydantic import BaseModel, ConfigDict

from projections.events import LedgerEvent
from projections.generations import live_schema
from projections.model import ReadModel
from projections.rows import Row, Rows, Table

NAME = "learner_progress"

SPECIALIZATIONS = Table(
    "specializations",
    (
        ("specialization_id", "text"),
        ("title", "text"),
        ("partners", "jsonb"),
        ("language", "text"),
        ("retired_at", "timestamptz"),
    ),
    key=("specialization_id",),
    scope="specialization_id",
)
LEARNERS = Table(
    "learners",
    (
        ("learner_id", "text"),
        ("registered_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("events", "bigint"),
    ),
    key=("learner_id",),
    scope="learner_id",
)
ENROLLMENTS = Table(
    "enrollments",
    (
        ("learner_id", "text"),
        ("specialization_id", "text"),
        ("enrollment_id", "text"),
        ("curriculum_version", "int"),
        ("intent", "text"),
        ("courses", "jsonb"),
        ("capstone_course_id", "text"),
        ("capstone_requires_all_courses", "boolean"),
        ("enrolled_at", "timestamptz"),
        ("ended_at", "timestamptz"),
    ),
    key=("learner_id", "specialization_id"),
    scope="learner_id",
)
COURSES = Table(
    "courses",
    (
        ("learner_id", "text"),
        ("course_id", "text"),
        ("grade", "numeric"),
        ("passed", "boolean"),
        ("graded_at", "timestamptz"),
        ("paid_by", "jsonb"),
        ("certificate_id", "text"),
        ("certified_at", "timestamptz"),
    ),
    key=("learner_id", "course_id"),
    scope="learner_id",
)
CERTIFICATES = Table(
    "certificates",
    (
        ("certificate_id", "text"),
        ("learner_id", "text"),
        ("kind", "text"),
        ("subject", "text"),
        ("enrollment_id", "text"),
        ("verification_code", "text"),
        ("earned_at", "timestamptz"),
        ("revoked_at", "timestamptz"),
        ("revoked_reason", "text"),
    ),
    key=("certificate_id",),
    scope="learner_id",
)
VERIFICATIONS = Table(
    "verifications",
    (
        ("learner_id", "text"),
        ("event_id", "text"),
        ("method", "text"),
        ("verified_at", "timestamptz"),
        ("expires_at", "timestamptz"),
        ("revoked_at", "timestamptz"),
    ),
    key=("learner_id", "event_id"),
    scope="learner_id",
)
IDENTITY_REVOCATIONS = Table(
    "identity_revocations",
    (("learner_id", "text"), ("version", "bigint"), ("at", "timestamptz")),
    key=("learner_id", "version"),
    scope="learner_id",
)
REFUSALS = Table(
    "refusals",
    (
        ("learner_id", "text"),
        ("version", "bigint"),
        ("at", "timestamptz"),
        ("request", "text"),
        ("subject", "text"),
        ("reason", "text"),
        ("detail", "text"),
    ),
    key=("learner_id", "version"),
    scope="learner_id",
)


def event_id(event: LedgerEvent) -> str:
    return f"{event.aggregate_id}:{event.version}"


def _touch(rows: Rows, event: LedgerEvent) -> None:
    learner = rows.get("learners", event.subject)
    if learner is not None:
        learner["updated_at"] = max(learner["updated_at"], event.time)
        learner["events"] += 1


def _course(rows: Rows, learner_id: str, course_id: str) -> Row:
    found = rows.get("courses", learner_id, course_id)
    if found is not None:
        return found  # the common case: no need to build the empty row below
    return rows.put(
        "courses",
        {
            "learner_id": learner_id,
            "course_id": course_id,
            "grade": None,
            "passed": False,
            "graded_at": None,
            "paid_by": (),
            "certificate_id": None,
            "certified_at": None,
        },
    )


def _refusal(
    rows: Rows, event: LedgerEvent, request: str, subject: str, reason: str, detail: str
) -> None:
    rows.put(
        "refusals",
        {
            "learner_id": event.subject,
            "version": event.version,
            "at": event.time,
            "request": request,
            "subject": subject,
            "reason": reason,
            "detail": detail,
        },
    )


def on_specialization_published(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    found = rows.get("specializations", d["specialization_id"])
    rows.put(
        "specializations",
        {
            "specialization_id": d["specialization_id"],
            "title": d["title"],
            "partners": tuple(d["partners"]),
            "language": d["language"],
            "retired_at": found["retired_at"] if found else None,
        },
    )


def on_specialization_retired(rows: Rows, event: LedgerEvent) -> None:
    found = rows.get("specializations", event.subject)
    if found is not None:
        found["retired_at"] = event.time


def on_registered(rows: Rows, event: LedgerEvent) -> None:
    rows.setdefault(
        "learners",
        {
            "learner_id": event.subject,
            "registered_at": event.time,
            "updated_at": event.time,
            "events": 0,
        },
    )
    _touch(rows, event)


def on_enrolled(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    rows.put(
        "enrollments",
        {
            "learner_id": event.subject,
            "specialization_id": d["specialization_id"],
            "enrollment_id": event_id(event),
            "curriculum_version": d["curriculum_version"],
            "intent": d["intent"],
            "courses": tuple(d["courses"]),
            "capstone_course_id": d["capstone_course_id"],
            "capstone_requires_all_courses": d.get("capstone_requires_all_courses", True),
            "enrolled_at": event.time,
            "ended_at": None,
        },
    )
    _touch(rows, event)


def on_unenrolled(rows: Rows, event: LedgerEvent) -> None:
    found = rows.get("enrollments", event.subject, event.data["specialization_id"])
    if found is not None:
        found["ended_at"] = event.time
    _touch(rows, event)


def on_intent_changed(rows: Rows, event: LedgerEvent) -> None:
    found = rows.get("enrollments", event.subject, event.data["specialization_id"])
    if found is not None:
        found["intent"] = event.data["intent"]
    _touch(rows, event)


def on_course_graded(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    course = _course(rows, event.subject, d["course_id"])
    # A pass is final (docs/rules.md); the grade shown is the latest in business time.
    course["passed"] = course["passed"] or bool(d["passed"])
    if course["graded_at"] is None or course["graded_at"] <= event.time:
        course["grade"] = Decimal(d["grade"])
        course["graded_at"] = event.time
    _touch(rows, event)


def on_capstone_grade_rejected(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    missing = "missing: " + "; ".join(d["missing"])
    _refusal(rows, event, "capstone_grade", d["course_id"], d["reason"], missing)
    _touch(rows, event)


def on_course_paid(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    course = _course(rows, event.subject, d["course_id"])
    course["paid_by"] = (*course["paid_by"], d["payment_id"])
    _touch(rows, event)


def on_aid_granted(rows: Rows, event: LedgerEvent) -> None:
    course = _course(rows, event.subject, event.data["course_id"])
    course["paid_by"] = (*course["paid_by"], "financial aid")
    _touch(rows, event)


def on_payment_undone(rows: Rows, event: LedgerEvent) -> None:
    """A granted refund or a chargeback: the payment no longer pays its course."""
    payment = event.data["payment_id"]
    for course in rows.where("courses", learner_id=event.subject):
        if payment in course["paid_by"]:
            course["paid_by"] = tuple(p for p in course["paid_by"] if p != payment)
    _touch(rows, event)


def on_payment_refused(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    request = "refund" if event.kind.endswith("refund_denied") else "payment"
    _refusal(rows, event, request, d["payment_id"], d["reason"], d["detail"])
    _touch(rows, event)


def _ends(verification: Row, at: datetime) -> None:
    if verification["verified_at"] <= at and (
        verification["revoked_at"] is None or verification["revoked_at"] > at
    ):
        verification["revoked_at"] = at


def on_identity_verified(rows: Rows, event: LedgerEvent) -> None:
    verification = rows.put(
        "verifications",
        {
            "learner_id": event.subject,
            "event_id": event_id(event),
            "method": event.data["method"],
            "verified_at": event.time,
            "expires_at": datetime.fromisoformat(event.data["expires_at"]),
            "revoked_at": None,
        },
    )
    # A revocation already recorded with a later time ends this verification too (I1).
    later = [r["at"] for r in rows.where("identity_revocations", learner_id=event.subject)]
    for at in sorted(later):
        _ends(verification, at)
    _touch(rows, event)


def on_identity_revoked(rows: Rows, event: LedgerEvent) -> None:
    rows.put(
        "identity_revocations",
        {"learner_id": event.subject, "version": event.version, "at": event.time},
    )
    for verification in rows.where("verifications", learner_id=event.subject):
        _ends(verification, event.time)
    _touch(rows, event)


def on_course_certified(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    earned_at = datetime.fromisoformat(d["earned_at"])
    rows.put(
        "certificates",
        {
            "certificate_id": d["certificate_id"],
            "learner_id": event.subject,
            "kind": "course",
            "subject": d["course_id"],
            "enrollment_id": None,
            "verification_code": d["verification_code"],
            "earned_at": earned_at,
            "revoked_at": None,
            "revoked_reason": None,
        },
    )
    course = _course(rows, event.subject, d["course_id"])
    course["certificate_id"] = d["certificate_id"]
    course["certified_at"] = earned_at
    _touch(rows, event)


def on_specialization_certified(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    rows.put(
        "certificates",
        {
            "certificate_id": d["certificate_id"],
            "learner_id": event.subject,
            "kind": "specialization",
            "subject": d["specialization_id"],
            "enrollment_id": d["enrollment_id"],
            "verification_code": d["verification_code"],
            "earned_at": datetime.fromisoformat(d["earned_at"]),
            "revoked_at": None,
            "revoked_reason": None,
        },
    )
    _touch(rows, event)


def on_certificate_revoked(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    certificate = rows.get("certificates", d["certificate_id"])
    if certificate is not None:
        certificate["revoked_at"] = event.time
        certificate["revoked_reason"] = d["reason"]
    for course in rows.where("courses", learner_id=event.subject):
        if course["certificate_id"] == d["certificate_id"]:
            course["certificate_id"] = None
            course["certified_at"] = None
    _touch(rows, event)


def on_request_refused(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    _refusal(rows, event, d["request"], d["subject"], d["reason"], d["detail"])
    _touch(rows, event)


def on_other_learner_event(rows: Rows, event: LedgerEvent) -> None:
    """Events this model shows nothing of still count as the learner's activity."""
    _touch(rows, event)


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
    "ledger.learner.identity_rejected": on_other_learner_event,
    "ledger.learner.identity_revoked": on_identity_revoked,
    "ledger.learner.course_certified": on_course_certified,
    "ledger.learner.specialization_certified": on_specialization_certified,
    "ledger.learner.certificate_revoked": on_certificate_revoked,
    "ledger.learner.request_refused": on_request_refused,
}

MODEL = ReadModel(
    NAME,
    (
        SPECIALIZATIONS,
        LEARNERS,
        ENROLLMENTS,
        COURSES,
        CERTIFICATES,
        VERIFICATIONS,
        IDENTITY_REVOCATIONS,
        REFUSALS,
    ),
    HANDLERS,
)


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
    capstone_requires_all_courses: bool = True


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


Cur = Cursor[tuple[Any, ...]]


def _q(text: str, schema: str) -> Composed:
    """A query over this model's live tables (written `{s}.<table>`)."""
    return SQL(text).format(s=Identifier(schema))


@dataclass(frozen=True)
class LearnerRows:
    """One learner's rows of this model (and the titles of their specializations): what the
    answer is assembled from, whether the rows come from PostgreSQL or from events applied in
    memory (an auditor's as-of view)."""

    learner: Row
    enrollments: list[Row]
    courses: list[Row]
    certificates: list[Row]
    verifications: list[Row]
    refusals: list[Row]
    specializations: dict[str, Row]


def _identity(learner: Row, verifications: list[Row]) -> Identity:
    """Identity as of the learner's latest business time: verified, until when, or revoked."""
    if not verifications:
        return Identity(verified=False, valid_until=None, revoked_at=None)
    now = learner["updated_at"]
    ends = [
        min(v["expires_at"], v["revoked_at"]) if v["revoked_at"] else v["expires_at"]
        for v in verifications
    ]
    valid = [
        end for v, end in zip(verifications, ends, strict=True) if v["verified_at"] <= now < end
    ]
    revoked = [v["revoked_at"] for v in verifications if v["revoked_at"] is not None]
    return Identity(
        verified=bool(valid),
        valid_until=max(valid) if valid else max(ends),
        revoked_at=max(revoked) if revoked else None,
    )


def _course_states(enrollment: Row, courses: dict[str, Row]) -> list[CourseState]:
    capstone = enrollment["capstone_course_id"]
    states = []
    for course_id in [*enrollment["courses"], capstone]:
        row = courses.get(course_id)
        paid_by = list(row["paid_by"]) if row else []
        states.append(
            CourseState(
                course_id=course_id,
                is_capstone=course_id == capstone,
                passed=bool(row and row["passed"]),
                grade=row["grade"] if row else None,
                graded_at=row["graded_at"] if row else None,
                paid=bool(paid_by),
                paid_by=paid_by,
                certified=bool(row and row["certificate_id"]),
                certificate_id=row["certificate_id"] if row else None,
                certified_at=row["certified_at"] if row else None,
            )
        )
    return states


def assemble(rows: LearnerRows) -> LearnerProgress:
    """The `learner show` answer from the learner's rows (pure)."""
    courses = {r["course_id"]: r for r in rows.courses}
    spec_certs = {
        c["enrollment_id"]: SpecializationCertificate(
            certificate_id=c["certificate_id"],
            verification_code=c["verification_code"],
            earned_at=c["earned_at"],
            revoked_at=c["revoked_at"],
            revoked_reason=c["revoked_reason"],
        )
        for c in rows.certificates
        if c["kind"] == "specialization"
    }
    enrollments = []
    for e in sorted(rows.enrollments, key=lambda r: (r["enrolled_at"], r["specialization_id"])):
        spec = rows.specializations.get(e["specialization_id"])
        states = _course_states(e, courses)
        certified = sum(1 for s in states if s.certified)
        enrollments.append(
            EnrollmentProgress(
                specialization_id=e["specialization_id"],
                title=spec["title"] if spec else e["specialization_id"],
                partners=list(spec["partners"]) if spec else [],
                curriculum_version=e["curriculum_version"],
                intent=e["intent"],
                active=e["ended_at"] is None,
                enrolled_at=e["enrolled_at"],
                ended_at=e["ended_at"],
                courses=states,
                courses_certified=certified,
                courses_total=len(states),
                percent_complete=round(100.0 * certified / len(states), 1),
                certificate=spec_certs.get(e["enrollment_id"]),
                capstone_requires_all_courses=e["capstone_requires_all_courses"],
            )
        )
    refusals = [
        Refusal(
            at=r["at"],
            request=r["request"],
            subject=r["subject"],
            reason=r["reason"],
            detail=r["detail"],
        )
        for r in sorted(rows.refusals, key=lambda r: r["version"])
    ]
    learner = rows.learner
    return LearnerProgress(
        learner_id=learner["learner_id"],
        registered_at=learner["registered_at"],
        updated_at=learner["updated_at"],
        events=learner["events"],
        identity=_identity(learner, sorted(rows.verifications, key=lambda v: v["verified_at"])),
        enrollments=enrollments,
        refusals=refusals,
    )


_ONE_LEARNER = (LEARNERS, ENROLLMENTS, COURSES, CERTIFICATES, VERIFICATIONS, REFUSALS)


def _statements(schema: str) -> Composed:
    """Every row of one learner, table after table, and their specializations: sent as one
    multi-statement query (one round trip instead of seven)."""
    parts = [
        SQL("SELECT {cols} FROM {s}.{t} WHERE learner_id = %(learner)s").format(
            cols=SQL(", ").join(map(Identifier, table.column_names)),
            s=Identifier(schema),
            t=Identifier(table.name),
        )
        for table in _ONE_LEARNER
    ]
    parts.append(
        SQL(
            "SELECT {cols} FROM {s}.specializations WHERE specialization_id IN"
            " (SELECT specialization_id FROM {s}.enrollments WHERE learner_id = %(learner)s)"
        ).format(
            cols=SQL(", ").join(map(Identifier, SPECIALIZATIONS.column_names)),
            s=Identifier(schema),
        )
    )
    return SQL("; ").join(parts)


def learner_progress(conn: Connection[Any], learner_id: str) -> LearnerProgress | None:
    """Everything this model knows about one learner, or None if it has not seen them."""
    # A client-side-binding cursor may send several statements at once; their results come
    # back one set after the other.
    with ClientCursor(conn) as cur:
        schema = live_schema(cur, NAME)
        cur.execute(_statements(schema), {"learner": learner_id})
        results: list[list[Row]] = []
        for table in (*_ONE_LEARNER, SPECIALIZATIONS):
            names = table.column_names
            results.append([dict(zip(names, row, strict=True)) for row in cur.fetchall()])
            cur.nextset()
    learner, enrollments, courses, certificates, verifications, refusals, specs = results
    if not learner:
        return None
    return assemble(
        LearnerRows(
            learner=learner[0],
            enrollments=enrollments,
            courses=courses,
            certificates=certificates,
            verifications=verifications,
            refusals=refusals,
            specializations={r["specialization_id"]: r for r in specs},
        )
    )


def progress_from_rows(rows: Rows, learner_id: str) -> LearnerProgress | None:
    """The `learner show` answer from rows changed in memory (events applied without a
    database): what the read model would have shown after exactly those events."""
    learner = rows.get("learners", learner_id)
    if learner is None:
        return None
    return assemble(
        LearnerRows(
            learner=learner,
            enrollments=list(rows.where("enrollments", learner_id=learner_id)),
            courses=list(rows.where("courses", learner_id=learner_id)),
            certificates=list(rows.where("certificates", learner_id=learner_id)),
            verifications=list(rows.where("verifications", learner_id=learner_id)),
            refusals=list(rows.where("refusals", learner_id=learner_id)),
            specializations={r["specialization_id"]: r for r in rows.where("specializations")},
        )
    )
