"""Credentials: the catalog's side of each certificate's Open Badges 3.0 credential.

Everything a credential says that a certificate's events decide (whose, what, when, on what
evidence, the curriculum it was earned on, its place in a revocation status list) is kept in
the certificates read model's row for it (`certificates.CREDENTIAL_COLUMNS`): one row per
certificate, so issuing a credential writes no row of its own. The place is the certificate
event's position in the event store (its notification id, stamped by the relay on every
record): unique, fixed for life, and the same after any rebuild, so the credential is the
same too. List `n` holds positions `n * LIST_SIZE` onwards.

What this model keeps is what the certificate's events do not say: the titles, partners and
language of the specializations, from the catalog's events (`programmes`), joined at query
time. The issuer and the signature are added by `ledger.credentials`, never stored.
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


MODEL = ReadModel(
    NAME,
    (PROGRAMMES,),
    {"ledger.specialization.published": on_specialization_published},
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


#: The certificates row's columns a credential is made of: those `CredentialFacts` names, and
#: the two it is derived from (the status list and index from the position, the programmes
#: from the curricula).
_FACTS = (
    *(c for c in certificates.CERTIFICATES.column_names if c in CredentialFacts.model_fields),
    "curricula",
    "position",
)


def credential_facts(conn: Connection[Any], code: str) -> CredentialFacts | None:
    """The facts of the credential whose certificate has this verification code."""
    with conn.cursor() as cur:
        cur.execute(
            SQL("SELECT {cols} FROM {s}.certificates WHERE verification_code = %s").format(
                cols=SQL(", ").join(map(Identifier, _FACTS)),
                s=Identifier(live_schema(cur, certificates.NAME)),
            ),
            (code,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        found = dict(zip(_FACTS, row, strict=True))
        specs = (
            [found["subject"]]
            if found["kind"] == "specialization"
            else sorted({c.rsplit("@", 1)[0] for c in found["curricula"]})
        )
        cur.execute(
            _q(
                "SELECT specialization_id, title, partners, language FROM {s}.programmes"
                " WHERE specialization_id = ANY(%s) ORDER BY specialization_id",
                live_schema(cur, NAME),
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
        schema = live_schema(cur, certificates.NAME)
        cur.execute(
            _q(
                "SELECT position - %s, revoked_at IS NOT NULL FROM {s}.certificates"
                " WHERE position >= %s AND position < %s",
                schema,
            ),
            (start, start, start + LIST_SIZE),
        )
        rows = cur.fetchall()
    return sorted(int(i) for i, revoked in rows if revoked), bool(rows)
