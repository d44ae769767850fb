"""The staff's questions about learners, as JSON: progress and "why no certificate yet"
(support), payments (finance), histories, exports and who read a learner's data (auditor), and
the retention figures (any member of staff).

Each answers through the query the matching `ledger` command uses, so the CLI and the API never
disagree; each read of a learner's data is recorded first (`auth`). An id the read models have
not seen is a 404 whose `detail` says so; a read model lagging behind looks the same, hence
"(or not projected yet)".
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from ledger.audit.export import NothingToExportError, export_lines
from ledger.audit.history import LearnerHistory, UnknownLearnerError, learner_history
from ledger.entrypoints.staff.reads import reads_of
from ledger.entrypoints.staff.roles import ANY_STAFF, Role
from ledger.entrypoints.web.auth import Access, api_access
from ledger.entrypoints.web.clients import Clients
from ledger.entrypoints.web.params import AsOf, Id, LearnerId, SpecializationId, moment_of
from ledger.entrypoints.web.public import NotFound
from projections.read_models import retention
from projections.read_models.eligibility import Eligibility, NotEnrolledError, eligibility
from projections.read_models.learner_progress import LearnerProgress, learner_progress
from projections.read_models.payments import Payment, payments_of

SupportReading = Annotated[Access, Depends(api_access(Role.SUPPORT, reads_learner=True))]
FinanceReading = Annotated[Access, Depends(api_access(Role.FINANCE, reads_learner=True))]
AuditorReading = Annotated[Access, Depends(api_access(Role.AUDITOR, reads_learner=True))]
AnyStaff = Annotated[Access, Depends(api_access(*ANY_STAFF))]
#: Who read a learner: staff's doings, not the learner's data, so not itself recorded.
Auditor = Annotated[Access, Depends(api_access(Role.AUDITOR))]


class RetentionRow(BaseModel):
    """One specialization and enrollment month of the retention funnel, with its rates."""

    specialization_id: str
    month: Annotated[date, Field(description="First day of the month enrolled in.")]
    registered: Annotated[int, Field(description="Enrollments.")]
    with_intent: Annotated[int, Field(description="Enrollments that ever stated intent.")]
    payers: Annotated[int, Field(description="Enrollments with a course of theirs paid.")]
    completed: Annotated[int, Field(description="Holding a live specialization certificate.")]
    completed_with_intent: int
    completed_payers: int
    completion_rate: Annotated[
        float | None, Field(description="completed / registered, percent; null if none.")
    ]
    intent_completion_rate: Annotated[
        float | None, Field(description="completed_with_intent / with_intent, percent.")
    ]
    payer_completion_rate: Annotated[
        float | None, Field(description="completed_payers / payers, percent.")
    ]


class StaffReadEntry(BaseModel):
    """One read of a learner's data by a member of staff."""

    read_at: datetime
    reader: Annotated[str, Field(description="The token's name, or cli:USER for the CLI.")]
    token_id: str | None
    via: Annotated[str, Field(description="api, console or cli.")]
    what: Annotated[str, Field(description="The route or page read.")]


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": NotFound}}


def unknown_learner(learner_id: str) -> HTTPException:
    return HTTPException(
        status_code=404,
        detail=f"learner {learner_id!r} is not known to the ledger (or not projected yet)",
    )


def router(clients: Clients) -> APIRouter:
    """The learner routes."""
    learners = APIRouter(tags=["learners"])

    @learners.get(
        "/v1/learners/{learner_id}",
        responses=NOT_FOUND,
        summary="Where a learner is in each specialization they enrolled in (support)",
    )
    def get_learner(learner_id: LearnerId, access: SupportReading) -> LearnerProgress:
        progress = learner_progress(access.conn, learner_id)
        if progress is None:
            raise unknown_learner(learner_id)
        return progress

    @learners.get(
        "/v1/learners/{learner_id}/eligibility/{specialization_id}",
        responses=NOT_FOUND,
        summary="Is the learner eligible for the certificate, and if not, what is missing "
        "(support)",
    )
    def get_eligibility(
        learner_id: LearnerId,
        specialization_id: SpecializationId,
        access: SupportReading,
    ) -> Eligibility:
        try:
            answer = eligibility(access.conn, learner_id, specialization_id)
        except NotEnrolledError as error:
            raise HTTPException(status_code=404, detail=str(error)) from None
        if answer is None:
            raise unknown_learner(learner_id)
        return answer

    @learners.get(
        "/v1/learners/{learner_id}/payments",
        responses=NOT_FOUND,
        summary="A learner's payments, oldest first, and what became of each (finance)",
    )
    def get_payments(learner_id: LearnerId, access: FinanceReading) -> list[Payment]:
        found = payments_of(access.conn, learner_id)
        # No payments may mean a learner who paid nothing yet or one never seen: only then is
        # the (heavier) progress query worth asking.
        if not found and learner_progress(access.conn, learner_id) is None:
            raise unknown_learner(learner_id)
        return found

    @learners.get(
        "/v1/learners/{learner_id}/history",
        responses=NOT_FOUND,
        summary="A learner's whole history from the event store; with as_of, as the ledger "
        "knew it then (auditor)",
    )
    def get_history(
        learner_id: LearnerId, access: AuditorReading, as_of: AsOf = None
    ) -> LearnerHistory:
        try:
            return learner_history(clients.learner_ledger(learner_id), learner_id, moment_of(as_of))
        except UnknownLearnerError as error:
            raise HTTPException(status_code=404, detail=str(error)) from None

    @learners.get(
        "/v1/learners/{learner_id}/export",
        response_class=PlainTextResponse,
        responses={
            **NOT_FOUND,
            200: {
                "content": {"application/x-ndjson": {}},
                "description": "JSON lines of CloudEvents with the hash chain, for "
                "`ledger audit check`.",
            },
        },
        summary="A learner's history as an export an outsider can check alone (auditor)",
    )
    def get_export(learner_id: LearnerId, access: AuditorReading) -> PlainTextResponse:
        try:
            lines = list(export_lines(clients.learner_ledger(learner_id), learner_id))
        except NothingToExportError as error:
            raise HTTPException(status_code=404, detail=str(error)) from None
        return PlainTextResponse("\n".join(lines) + "\n", media_type="application/x-ndjson")

    @learners.get(
        "/v1/learners/{learner_id}/reads",
        summary="Who read this learner's data, newest first (auditor)",
    )
    def get_reads(
        learner_id: LearnerId,
        access: Auditor,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    ) -> list[StaffReadEntry]:
        return [
            StaffReadEntry(
                read_at=r.read_at, reader=r.reader, token_id=r.token_id, via=r.via, what=r.what
            )
            for r in reads_of(access.conn, learner_id, limit)
        ]

    @learners.get(
        "/v1/stats/retention",
        response_model=list[RetentionRow],
        summary="Completion per specialization and enrollment month: of all, of intent, of "
        "payers (any staff role)",
        tags=["figures"],
    )
    def get_retention(
        access: AnyStaff,
        specialization: Annotated[
            Id | None,
            Query(max_length=200, description="Only this specialization (default: all of them)."),
        ] = None,
    ) -> list[dict[str, Any]]:
        return [row.as_dict() for row in retention.funnel(access.conn, specialization)]

    return learners
