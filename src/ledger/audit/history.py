"""A learner's history, oldest first, and what the ledger derived from it at any moment.

The history is read from the event store, the record itself. `--as-of` keeps only the events
recorded by then (recorded time, not business time: what the ledger *knew*), and derives the
state by applying exactly those events to the read models' own handlers in memory, so the
state shown is what `learner show` and `learner why` answered at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from ledger.application import Ledger
from ledger.domain import Learner, learner_aggregate_id, specialization_aggregate_id
from ledger.domain.chain import event_data
from ledger.outbound import event_type, subject_of
from projections.events import LedgerEvent
from projections.model import ReadModel
from projections.read_models import certificates, learner_progress
from projections.read_models.certificates import Certificate
from projections.read_models.eligibility import Eligibility, explain
from projections.read_models.learner_progress import LearnerProgress

#: Event kinds that are the rules saying no; their reason is shown beside them.
REFUSALS = frozenset(
    {
        "ledger.learner.capstone_grade_rejected",
        "ledger.learner.request_refused",
        "ledger.learner.refund_denied",
        "ledger.learner.payment_to_be_returned",
        "ledger.learner.identity_rejected",
    }
)


class HistoryEntry(BaseModel):
    """One event of the history."""

    model_config = ConfigDict(frozen=True)
    version: int
    event_id: str
    type: str
    business_time: datetime
    recorded_time: datetime
    data: dict[str, Any]
    refusal: str | None


class AsOfState(BaseModel):
    """What the ledger derived from the events recorded by `as_of`."""

    model_config = ConfigDict(frozen=True)
    as_of: datetime
    progress: LearnerProgress | None
    eligibility: list[Eligibility]
    certificates: list[Certificate]


class LearnerHistory(BaseModel):
    """The answer to `ledger audit history`."""

    model_config = ConfigDict(frozen=True)
    learner_id: str
    events: list[HistoryEntry]
    state: AsOfState | None


class UnknownLearnerError(LookupError):
    """The event store holds no stream for this learner."""


@dataclass(frozen=True)
class _Loaded:
    event: Any
    ledger_event: LedgerEvent


def _as_ledger_event(event: Any, subject: str) -> LedgerEvent:
    """The event as the projections read it from `ledger.events` (same data, same times)."""
    data = event_data(event)
    at = getattr(event, "at", None)
    return LedgerEvent(
        aggregate_id=str(event.originator_id),
        version=event.originator_version,
        type=event_type(type(event)),
        subject=subject,
        time=at if isinstance(at, datetime) else event.timestamp,
        data=data,
    )


def _load(ledger: Ledger, aggregate_id: UUID, as_of: datetime | None) -> list[_Loaded]:
    loaded: list[_Loaded] = []
    subject = ""
    event: Any
    for event in ledger.events.get(aggregate_id):  # one query, in version order
        if as_of is not None and event.timestamp > as_of:
            break  # versions are recorded in order: nothing later was known then
        if not subject:
            subject = subject_of(event)
        loaded.append(_Loaded(event, _as_ledger_event(event, subject)))
    return loaded


def _refusal(entry: LedgerEvent) -> str | None:
    if entry.kind not in REFUSALS:
        return None
    d = entry.data
    detail = d.get("detail") or "; ".join(d.get("missing") or ())
    return f"{d.get('reason')}: {detail}" if detail else str(d.get("reason"))


def _state(learner_id: str, events: list[LedgerEvent], as_of: datetime) -> AsOfState:
    models: list[ReadModel] = [learner_progress.MODEL, certificates.MODEL]
    rows = {m.name: m.rows() for m in models}
    for model in models:
        for event in events:
            model.apply(rows[model.name], event)
    progress = learner_progress.progress_from_rows(rows[learner_progress.NAME], learner_id)
    answers = [explain(progress, e) for e in progress.enrollments] if progress else []
    certs = [
        Certificate(**{**row, "evidence": list(row["evidence"])})
        for row in sorted(
            rows[certificates.NAME].where("certificates"), key=lambda r: r["earned_at"]
        )
    ]
    return AsOfState(as_of=as_of, progress=progress, eligibility=answers, certificates=certs)


def learner_history(
    ledger: Ledger, learner_id: str, as_of: datetime | None = None
) -> LearnerHistory:
    """The learner's events, oldest first; with `as_of`, those recorded by then and the state."""
    loaded = _load(ledger, learner_aggregate_id(learner_id), as_of)
    if not loaded and as_of is None:
        raise UnknownLearnerError(f"the event store has no history for learner {learner_id!r}")
    entries = [
        HistoryEntry(
            version=item.ledger_event.version,
            event_id=f"{item.ledger_event.aggregate_id}:{item.ledger_event.version}",
            type=item.ledger_event.type,
            business_time=item.ledger_event.time,
            recorded_time=item.event.timestamp,
            data=item.ledger_event.data,
            refusal=_refusal(item.ledger_event),
        )
        for item in loaded
    ]
    state = None
    if as_of is not None:
        catalog: list[LedgerEvent] = []
        specs = {e.event.specialization_id for e in loaded if isinstance(e.event, Learner.Enrolled)}
        for spec_id in sorted(specs):
            catalog.extend(
                item.ledger_event
                for item in _load(ledger, specialization_aggregate_id(spec_id), as_of)
            )
        state = _state(learner_id, [*catalog, *(i.ledger_event for i in loaded)], as_of)
    return LearnerHistory(learner_id=learner_id, events=entries, state=state)
