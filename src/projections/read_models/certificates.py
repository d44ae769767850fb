"""Certificates, for anyone holding a verification code: is this certificate real, and valid?

One row per certificate, course or specialization, found by its verification code (K4): whose
it is, what it certifies, when it was earned, on what evidence, and whether it is still valid
or was revoked (when, why, and whether by trust & safety). A revoked certificate stays (K6).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.sql import SQL, Identifier
from pydantic import BaseModel, ConfigDict

from projections.events import LedgerEvent
from projections.generations import live_schema
from projections.model import ReadModel
from projections.rows import Rows, Table

NAME = "certificates"

CERTIFICATES = Table(
    "certificates",
    (
        ("certificate_id", "text"),
        ("verification_code", "text"),
        ("learner_id", "text"),
        ("kind", "text"),
        ("subject", "text"),
        ("enrollment_id", "text"),
        ("curriculum_version", "int"),
        ("earned_at", "timestamptz"),
        ("evidence", "jsonb"),
        ("status", "text"),
        ("revoked_at", "timestamptz"),
        ("revoked_reason", "text"),
        ("revoked_detail", "text"),
        ("revoked_by_trust_and_safety", "boolean"),
        # What the certificate's Open Badges credential adds (`ledger.credentials`): its place
        # in a revocation status list (the certificate event's position in the event store:
        # unique, fixed for life, the same after a rebuild), the specializations a course
        # counts for, and the curriculum a specialization was earned on.
        ("position", "bigint"),
        ("curricula", "jsonb"),
        ("courses", "jsonb"),
        ("capstone_course_id", "text"),
    ),
    key=("certificate_id",),
    scope="learner_id",
    indexes=("verification_code", "position"),
    store_order=("position",),
)
#: The columns only credentials need: one row per certificate holds both, so issuing a
#: credential writes no row of its own (`ledger bench projections` measures the worker with
#: the table without them, for what credentials cost).
CREDENTIAL_COLUMNS = ("position", "curricula", "courses", "capstone_course_id")


def _issued(rows: Rows, event: LedgerEvent, kind: str, subject: str, **credential: Any) -> None:
    d = event.data
    rows.put(
        "certificates",
        {
            "certificate_id": d["certificate_id"],
            "verification_code": d["verification_code"],
            "learner_id": event.subject,
            "kind": kind,
            "subject": subject,
            "enrollment_id": d.get("enrollment_id"),
            "curriculum_version": d.get("curriculum_version"),
            "earned_at": datetime.fromisoformat(d["earned_at"]),
            "evidence": tuple(d["evidence"]),
            "status": "valid",
            "revoked_at": None,
            "revoked_reason": None,
            "revoked_detail": None,
            "revoked_by_trust_and_safety": None,
            "position": event.position,
            "curricula": (),
            "courses": (),
            "capstone_course_id": None,
            **credential,
        },
    )


def on_course_certified(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    _issued(rows, event, "course", d["course_id"], curricula=tuple(d.get("curricula", ())))


def on_specialization_certified(rows: Rows, event: LedgerEvent) -> None:
    """With the curriculum it was earned on, read from the course certificates it rests on:
    K3 issues it with the live certificate of every pinned course and then the capstone's, in
    that order, and their rows are this learner's (however long ago they were earned). So no
    row per enrollment keeps the pinned curriculum for the few that end in a certificate."""
    d = event.data
    subjects: list[str] = []
    for certificate_id in d["course_certificate_ids"]:
        course = rows.get("certificates", certificate_id)
        if course is None:  # not kept by this model (an event it skipped): say nothing
            subjects = []
            break
        subjects.append(course["subject"])
    _issued(
        rows,
        event,
        "specialization",
        d["specialization_id"],
        courses=tuple(subjects[:-1]),
        capstone_course_id=subjects[-1] if subjects else None,
    )


def on_certificate_revoked(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    found = rows.get("certificates", d["certificate_id"])
    if found is not None:
        found.update(
            status="revoked",
            revoked_at=event.time,
            revoked_reason=d["reason"],
            revoked_detail=d["detail"],
            revoked_by_trust_and_safety=d["by_trust_and_safety"],
        )


MODEL = ReadModel(
    NAME,
    (CERTIFICATES,),
    {
        "ledger.learner.course_certified": on_course_certified,
        "ledger.learner.specialization_certified": on_specialization_certified,
        "ledger.learner.certificate_revoked": on_certificate_revoked,
    },
)


class Certificate(BaseModel):
    """The answer to `ledger certificate verify CODE`."""

    model_config = ConfigDict(frozen=True)
    certificate_id: str
    verification_code: str
    learner_id: str
    kind: str
    subject: str
    enrollment_id: str | None
    curriculum_version: int | None
    earned_at: datetime
    evidence: list[str]
    status: str
    revoked_at: datetime | None
    revoked_reason: str | None
    revoked_detail: str | None
    revoked_by_trust_and_safety: bool | None


#: The columns a `Certificate` is made of: not those only credentials read.
_ANSWER = [c for c in CERTIFICATES.column_names if c in Certificate.model_fields]


def verify(conn: Connection[Any], code: str) -> Certificate | None:
    """The certificate with this verification code, or None if there is none."""
    names = _ANSWER
    with conn.cursor() as cur:
        schema = live_schema(cur, NAME)
        cur.execute(
            SQL("SELECT {cols} FROM {s}.certificates WHERE verification_code = %s").format(
                cols=SQL(", ").join(map(Identifier, names)), s=Identifier(schema)
            ),
            (code,),
        )
        row = cur.fetchone()
    return None if row is None else Certificate(**dict(zip(names, row, strict=True)))


def certificates_of(conn: Connection[Any], learner_id: str) -> list[Certificate]:
    """Every certificate of a learner, course and specialization, live or revoked, oldest
    first."""
    names = _ANSWER
    with conn.cursor() as cur:
        schema = live_schema(cur, NAME)
        cur.execute(
            SQL(
                "SELECT {cols} FROM {s}.certificates WHERE learner_id = %s"
                " ORDER BY earned_at, certificate_id"
            ).format(cols=SQL(", ").join(map(Identifier, names)), s=Identifier(schema)),
            (learner_id,),
        )
        return [Certificate(**dict(zip(names, row, strict=True))) for row in cur.fetchall()]
