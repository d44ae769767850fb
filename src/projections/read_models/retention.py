"""The retention funnel: of those who enrolled in a month, who stated intent, who paid, and
how many of each finished: the figures behind "4% of all, 24% of those with intent, 63% of
payers".

Per enrollment a row of facts (month enrolled in business time, certificate intent ever stated,
any course of its curriculum paid, specialization certificate held); per (specialization, month)
counters that each change of those facts moves by its difference, so the funnel is one indexed
read however many learners there are. A revoked specialization certificate no longer counts as
completed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from psycopg import Connection
from psycopg.sql import SQL, Identifier
from pydantic import BaseModel, ConfigDict

from projections.events import LedgerEvent
from projections.generations import live_schema
from projections.model import ReadModel
from projections.rows import Counters, Row, Rows, Table

NAME = "retention"

ENROLLMENTS = Table(
    "enrollments",
    (
        ("learner_id", "text"),
        ("enrollment_id", "text"),
        ("specialization_id", "text"),
        ("month", "date"),
        ("courses", "jsonb"),
        ("active", "boolean"),
        ("intent", "boolean"),
        ("paid", "boolean"),
        ("completed", "boolean"),
        ("certificate_id", "text"),
    ),
    key=("learner_id", "enrollment_id"),
    scope="learner_id",
)
FIGURES = (
    "registered",
    "with_intent",
    "payers",
    "completed",
    "completed_with_intent",
    "completed_payers",
)
FUNNEL = Counters("funnel", (("specialization_id", "text"), ("month", "date")), FIGURES)


def month_of(moment: datetime) -> date:
    return date(moment.year, moment.month, 1)


def _contribution(row: Row) -> tuple[int, ...]:
    done = row["completed"]
    return (
        1,
        int(row["intent"]),
        int(row["paid"]),
        int(done),
        int(done and row["intent"]),
        int(done and row["paid"]),
    )


def _change(rows: Rows, row: Row, **facts: Any) -> None:
    """Change an enrollment's facts and move the funnel's counters by the difference."""
    before = _contribution(row)
    row.update(facts)
    after = _contribution(row)
    deltas = {f: a - b for f, a, b in zip(FIGURES, after, before, strict=True) if a != b}
    if deltas:
        rows.add("funnel", (row["specialization_id"], row["month"]), **deltas)


def on_enrolled(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    row = rows.put(
        "enrollments",
        {
            "learner_id": event.subject,
            "enrollment_id": f"{event.aggregate_id}:{event.version}",
            "specialization_id": d["specialization_id"],
            "month": month_of(event.time),
            "courses": (*d["courses"], d["capstone_course_id"]),
            "active": True,
            "intent": False,
            "paid": False,
            "completed": False,
            "certificate_id": None,
        },
    )
    rows.add("funnel", (row["specialization_id"], row["month"]), registered=1)
    if d["intent"] == "certificate":
        _change(rows, row, intent=True)


def _active(rows: Rows, event: LedgerEvent) -> list[Row]:
    return list(rows.where("enrollments", learner_id=event.subject, active=True))


def on_unenrolled(rows: Rows, event: LedgerEvent) -> None:
    for row in _active(rows, event):
        if row["specialization_id"] == event.data["specialization_id"]:
            row["active"] = False


def on_intent_changed(rows: Rows, event: LedgerEvent) -> None:
    if event.data["intent"] != "certificate":
        return  # intent once stated stays counted: the funnel asks who ever stated it
    for row in _active(rows, event):
        if row["specialization_id"] == event.data["specialization_id"]:
            _change(rows, row, intent=True)


def on_course_paid(rows: Rows, event: LedgerEvent) -> None:
    for row in _active(rows, event):
        if event.data["course_id"] in row["courses"] and not row["paid"]:
            _change(rows, row, paid=True)


def on_specialization_certified(rows: Rows, event: LedgerEvent) -> None:
    row = rows.get("enrollments", event.subject, event.data["enrollment_id"])
    if row is not None:
        _change(rows, row, completed=True, certificate_id=event.data["certificate_id"])


def on_certificate_revoked(rows: Rows, event: LedgerEvent) -> None:
    for row in rows.where("enrollments", learner_id=event.subject):
        if row["certificate_id"] == event.data["certificate_id"]:
            _change(rows, row, completed=False)


MODEL = ReadModel(
    NAME,
    (ENROLLMENTS,),
    {
        "ledger.learner.enrolled": on_enrolled,
        "ledger.learner.unenrolled": on_unenrolled,
        "ledger.learner.intent_changed": on_intent_changed,
        "ledger.learner.course_paid": on_course_paid,
        "ledger.learner.specialization_certified": on_specialization_certified,
        "ledger.learner.certificate_revoked": on_certificate_revoked,
    },
    (FUNNEL,),
)


class FunnelRow(BaseModel):
    """One specialization and enrollment month, with its completion rates (percent)."""

    model_config = ConfigDict(frozen=True)
    specialization_id: str
    month: date
    registered: int
    with_intent: int
    payers: int
    completed: int
    completed_with_intent: int
    completed_payers: int

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return round(100.0 * part / whole, 1) if whole else None

    @property
    def completion_rate(self) -> float | None:
        return self._rate(self.completed, self.registered)

    @property
    def intent_completion_rate(self) -> float | None:
        return self._rate(self.completed_with_intent, self.with_intent)

    @property
    def payer_completion_rate(self) -> float | None:
        return self._rate(self.completed_payers, self.payers)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.model_dump(mode="json"),
            "completion_rate": self.completion_rate,
            "intent_completion_rate": self.intent_completion_rate,
            "payer_completion_rate": self.payer_completion_rate,
        }


def funnel(conn: Connection[Any], specialization_id: str | None = None) -> list[FunnelRow]:
    """The funnel per specialization and month, oldest month first."""
    names = ["specialization_id", "month", *FIGURES]
    with conn.cursor() as cur:
        schema = live_schema(cur, NAME)
        cur.execute(
            SQL(
                "SELECT {cols} FROM {s}.funnel WHERE %s::text IS NULL OR specialization_id = %s"
                " ORDER BY specialization_id, month"
            ).format(cols=SQL(", ").join(map(Identifier, names)), s=Identifier(schema)),
            (specialization_id, specialization_id),
        )
        return [FunnelRow(**dict(zip(names, row, strict=True))) for row in cur.fetchall()]
