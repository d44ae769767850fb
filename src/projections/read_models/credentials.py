"""Credentials: what each certificate's Open Badges 3.0 credential says, and where its
revocation bit lives.

One row per certificate, course or specialization, with everything its credential is made of
that the events say: whose, what, when, on what evidence, the curriculum it was earned on (the
one the enrollment pinned, with its courses and capstone), and its place in a revocation status
list. The place is the certificate event's position in the event store (its notification id,
stamped by the relay on every record): unique, fixed for life, and the same after any rebuild,
so the credential is the same too. List `n` holds positions `n * LIST_SIZE` onwards.

Titles, partners and language come from the catalog events (`programmes`), joined at query
time; the issuer and the signature are added by `ledger.credentials`, never stored here.
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
from projections.read_models import certificates
from projections.rows import Rows, Table

NAME = "credentials"

#: Entries of one status list: the W3C Bitstring Status List's minimum (16 KiB of bits), so a
#: list cannot tell on the few certificates in it.
LIST_SIZE = 131_072

PROGRAMMES = Table(
    "programmes",
    (
        ("specialization_id", "text"),
        ("title", "text"),
        ("partners", "jsonb"),
        ("language", "text"),
    ),
    key=("specialization_id",),
    scope="specialization_id",
)
CREDENTIALS = Table(
    "credentials",
    (
        ("certificate_id", "text"),
        ("learner_id", "text"),
        ("verification_code", "text"),
        ("kind", "text"),
        ("subject", "text"),
        ("earned_at", "timestamptz"),
        ("evidence", "jsonb"),
        ("curriculum_version", "int"),
        ("courses", "jsonb"),
        ("capstone_course_id", "text"),
        ("curricula", "jsonb"),
        ("position", "bigint"),
        ("revoked_at", "timestamptz"),
        ("revoked_reason", "text"),
    ),
    # Keyed by learner first, so the key's index also serves loading a learner's rows, and
    # no index by verification code: a code is looked up in the certificates read model,
    # which has one. Each index is written for every certificate issued; with four (the key,
    # the learner, the code, the position) writing the rows was most of this model's time.
    key=("learner_id", "certificate_id"),
    scope="learner_id",
    indexes=("position",),
    store_order=("position",),
)


def on_specialization_published(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    rows.put(
        "programmes",
        {
            "specialization_id": d["specialization_id"],
            "title": d["title"],
            "partners": tuple(d["partners"]),
            "language": d["language"],
        },
    )


def _issued(rows: Rows, event: LedgerEvent, kind: str, subject: str, **curriculum: Any) -> None:
    d = event.data
    rows.put(
        "credentials",
        {
            "certificate_id": d["certificate_id"],
            "learner_id": event.subject,
            "verification_code": d["verification_code"],
            "kind": kind,
            "subject": subject,
            "earned_at": datetime.fromisoformat(d["earned_at"]),
            "evidence": tuple(d["evidence"]),
            "curriculum_version": None,
            "courses": (),
            "capstone_course_id": None,
            "curricula": (),
            "position": event.position,
            "revoked_at": None,
            "revoked_reason": None,
            **curriculum,
        },
    )


def on_course_certified(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    _issued(rows, event, "course", d["course_id"], curricula=tuple(d.get("curricula", ())))


def on_specialization_certified(rows: Rows, event: LedgerEvent) -> None:
    """The curriculum it was earned on, read from the course certificates it rests on: K3
    issues it with the live certificate of every pinned course and then the capstone's, in
    that order, and their rows are this learner's (kept however long ago they were earned).

    Before, each enrollment's pinned curriculum was copied into a row of its own, for the few
    enrollments that ever end in a specialization certificate: a row written per enrollment,
    most of the model's work (`ledger bench projections`)."""
    d = event.data
    subjects: list[str] = []
    for certificate_id in d["course_certificate_ids"]:
        course = rows.get("credentials", event.subject, certificate_id)
        if course is None:  # not kept by this model (an event it skipped): say nothing
            subjects = []
            break
        subjects.append(course["subject"])
    _issued(
        rows,
        event,
        "specialization",
        d["specialization_id"],
        curriculum_version=d["curriculum_version"],
        courses=tuple(subjects[:-1]),
        capstone_course_id=subjects[-1] if subjects else None,
    )


def on_certificate_revoked(rows: Rows, event: LedgerEvent) -> None:
    found = rows.get("credentials", event.subject, event.data["certificate_id"])
    if found is not None:
        found.update(revoked_at=event.time, revoked_reason=event.data["reason"])


MODEL = ReadModel(
    NAME,
    (PROGRAMMES, CREDENTIALS),
    {
        "ledger.specialization.published": on_specialization_published,
        "ledger.learner.course_certified": on_course_certified,
        "ledger.learner.specialization_certified": on_specialization_certified,
        "ledger.learner.certificate_revoked": on_certificate_revoked,
    },
)


class Programme(BaseModel):
    """A specialization as the catalog describes it."""

    model_config = ConfigDict(frozen=True)
    specialization_id: str
    title: str
    partners: list[str]
    language: str


class CredentialFacts(BaseModel):
    """Everything a certificate's credential says that the events decide."""

    model_config = ConfigDict(frozen=True)
    certificate_id: str
    learner_id: str
    verification_code: str
    kind: str
    subject: str
    earned_at: datetime
    evidence: list[str]
    curriculum_version: int | None
    courses: list[str]
    capstone_course_id: str | None
    #: The specializations it counts for: the one earned (a specialization certificate), or
    #: those whose pinned curricula hold the course.
    programmes: list[Programme]
    status_list: int
    status_index: int
    revoked_at: datetime | None
    revoked_reason: str | None


def _q(text: str, schema: str) -> Any:
    return SQL(text).format(s=Identifier(schema))


def credential_facts(conn: Connection[Any], code: str) -> CredentialFacts | None:
    """The facts of the credential whose certificate has this verification code (found in the
    certificates read model, which is indexed by code)."""
    certificate = certificates.verify(conn, code)
    if certificate is None:
        return None
    names = CREDENTIALS.column_names
    with conn.cursor() as cur:
        schema = live_schema(cur, NAME)
        cur.execute(
            SQL(
                "SELECT {cols} FROM {s}.credentials WHERE learner_id = %s AND certificate_id = %s"
            ).format(cols=SQL(", ").join(map(Identifier, names)), s=Identifier(schema)),
            (certificate.learner_id, certificate.certificate_id),
        )
        row = cur.fetchone()
        if row is None:  # the two read models stand at different places (one rebuilding)
            return None
        found = dict(zip(names, row, strict=True))
        specs = (
            [found["subject"]]
            if found["kind"] == "specialization"
            else sorted({c.rsplit("@", 1)[0] for c in found["curricula"]})
        )
        cur.execute(
            _q(
                "SELECT specialization_id, title, partners, language FROM {s}.programmes"
                " WHERE specialization_id = ANY(%s) ORDER BY specialization_id",
                schema,
            ),
            (specs,),
        )
        programmes = [
            Programme(specialization_id=r[0], title=r[1], partners=list(r[2]), language=r[3])
            for r in cur.fetchall()
        ]
    position = int(found.pop("position"))
    found.pop("curricula")
    return CredentialFacts(
        **found,
        programmes=programmes,
        status_list=position // LIST_SIZE,
        status_index=position % LIST_SIZE,
    )


def revoked_indexes(conn: Connection[Any], status_list: int) -> tuple[list[int], bool]:
    """The indexes of list `status_list` whose certificates are revoked, and whether the list
    holds any certificate at all (a list no certificate is in is not published)."""
    start = status_list * LIST_SIZE
    with conn.cursor() as cur:
        schema = live_schema(cur, NAME)
        cur.execute(
            _q(
                "SELECT position - %s, revoked_at IS NOT NULL FROM {s}.credentials"
                " WHERE position >= %s AND position < %s",
                schema,
            ),
            (start, start, start + LIST_SIZE),
        )
        rows = cur.fetchall()
    return sorted(int(i) for i, revoked in rows if revoked), bool(rows)
