"""Payments, for finance: every payment the ledger was told of, and what became of it.

One row per (learner, payment id): the course, amount and currency, when it was captured, and
its state: `captured` (it pays its course), `refunded`, `refund_denied` (still captured; the
reason says why the refund was refused), `charged_back`, or `to_be_returned` (the ledger did
not count it: a duplicate or unmatched payment, P1/P2, which finance must give back).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import Connection
from psycopg.sql import SQL, Identifier
from pydantic import BaseModel, ConfigDict

from projections.events import LedgerEvent
from projections.generations import live_schema
from projections.model import ReadModel
from projections.rows import Row, Rows, Table

NAME = "payments"

PAYMENTS = Table(
    "payments",
    (
        ("learner_id", "text"),
        ("payment_id", "text"),
        ("course_id", "text"),
        ("amount", "numeric"),
        ("currency", "text"),
        ("captured_at", "timestamptz"),
        ("state", "text"),
        ("reason", "text"),
        ("detail", "text"),
        ("updated_at", "timestamptz"),
    ),
    key=("learner_id", "payment_id"),
    scope="learner_id",
    indexes=("state",),
)


def _payment(rows: Rows, event: LedgerEvent) -> Row | None:
    return rows.get("payments", event.subject, event.data["payment_id"])


def _set(
    row: Row | None,
    event: LedgerEvent,
    state: str,
    reason: str | None = None,
    detail: str | None = None,
) -> None:
    if row is None:  # a payment the ledger never recorded: nothing to show a state for
        return
    row.update(state=state, reason=reason, detail=detail, updated_at=event.time)


def _recorded(
    rows: Rows, event: LedgerEvent, state: str, reason: str | None, detail: str | None
) -> None:
    d = event.data
    rows.put(
        "payments",
        {
            "learner_id": event.subject,
            "payment_id": d["payment_id"],
            "course_id": d["course_id"],
            "amount": Decimal(d["amount"]),
            "currency": d["currency"],
            "captured_at": event.time,
            "state": state,
            "reason": reason,
            "detail": detail,
            "updated_at": event.time,
        },
    )


def on_course_paid(rows: Rows, event: LedgerEvent) -> None:
    _recorded(rows, event, "captured", None, None)


def on_to_be_returned(rows: Rows, event: LedgerEvent) -> None:
    _recorded(rows, event, "to_be_returned", event.data["reason"], event.data["detail"])


def on_refund_granted(rows: Rows, event: LedgerEvent) -> None:
    _set(_payment(rows, event), event, "refunded")


def on_refund_denied(rows: Rows, event: LedgerEvent) -> None:
    d = event.data
    _set(_payment(rows, event), event, "refund_denied", d["reason"], d["detail"])


def on_charged_back(rows: Rows, event: LedgerEvent) -> None:
    _set(_payment(rows, event), event, "charged_back")


MODEL = ReadModel(
    NAME,
    (PAYMENTS,),
    {
        "ledger.learner.course_paid": on_course_paid,
        "ledger.learner.payment_to_be_returned": on_to_be_returned,
        "ledger.learner.refund_granted": on_refund_granted,
        "ledger.learner.refund_denied": on_refund_denied,
        "ledger.learner.payment_charged_back": on_charged_back,
    },
)


class Payment(BaseModel):
    """One payment as finance sees it."""

    model_config = ConfigDict(frozen=True)
    learner_id: str
    payment_id: str
    course_id: str
    amount: Decimal
    currency: str
    captured_at: datetime
    state: str
    reason: str | None
    detail: str | None
    updated_at: datetime


def payments_of(conn: Connection[Any], learner_id: str) -> list[Payment]:
    """A learner's payments, oldest first."""
    names = PAYMENTS.column_names
    with conn.cursor() as cur:
        schema = live_schema(cur, NAME)
        cur.execute(
            SQL(
                "SELECT {cols} FROM {s}.payments WHERE learner_id = %s"
                " ORDER BY captured_at, payment_id"
            ).format(cols=SQL(", ").join(map(Identifier, names)), s=Identifier(schema)),
            (learner_id,),
        )
        return [Payment(**dict(zip(names, row, strict=True))) for row in cur.fetchall()]
