"""The support console: server-rendered pages for support staff, finance, auditors and
operators, in the same app as the API and answering from the same queries.

Every page reads without JavaScript (none is served at all); forms are plain HTML posts. A page
that shows a learner's data records the read, as the API does. Forms that change something
(sign out, retry a rejection, rebuild a read model) carry the session's form token and, where an
act cannot be undone, ask for a confirmation first.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ledger.audit.history import UnknownLearnerError, learner_history
from ledger.entrypoints import rebuilds, rejections
from ledger.entrypoints.staff import tokens
from ledger.entrypoints.staff.reads import reads_of
from ledger.entrypoints.staff.roles import ANY_STAFF, Role
from ledger.entrypoints.staff.tokens import TokenRefusedError
from ledger.entrypoints.web.auth import Access, console_access
from ledger.entrypoints.web.clients import Clients
from ledger.entrypoints.web.operations import RejectionId
from ledger.entrypoints.web.pages import Pages
from ledger.entrypoints.web.params import AsOf, LearnerId, SpecializationId, moment_of
from ledger.entrypoints.web.ratelimit import PublicRateLimit
from ledger.entrypoints.web.sessions import COOKIE, MAX_AGE_S, Sessions
from ledger.errors import NotFoundError
from projections.catalog import READ_MODELS
from projections.read_models.certificates import certificates_of
from projections.read_models.eligibility import NotEnrolledError, eligibility
from projections.read_models.learner_progress import learner_progress
from projections.read_models.payments import payments_of
from projections.status import projection_lag

Form_ = Annotated[str, Form(max_length=500)]


AnyStaff = Annotated[Access, Depends(console_access(*ANY_STAFF))]
SupportReading = Annotated[Access, Depends(console_access(Role.SUPPORT, reads_learner=True))]
FinanceReading = Annotated[Access, Depends(console_access(Role.FINANCE, reads_learner=True))]
AuditorReading = Annotated[Access, Depends(console_access(Role.AUDITOR, reads_learner=True))]
Auditor = Annotated[Access, Depends(console_access(Role.AUDITOR))]
Operator = Annotated[Access, Depends(console_access(Role.OPERATOR))]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a console page of this site, never elsewhere."""
    if value and value.startswith("/console") and not value.startswith("//"):
        return value
    return "/console"


class _Console:
    """What every page of the console needs: the clients, the templates, the sessions."""

    def __init__(self, clients: Clients, pages: Pages, sessions: Sessions) -> None:
        self.clients = clients
        self.pages = pages
        self.sessions = sessions
        self.settings = clients.settings

    def checked_form(self, request: Request, csrf: str | None) -> None:
        """403 unless a form carries the session's form token."""
        if not self.sessions.csrf_ok(request.cookies.get(COOKIE), csrf):
            raise HTTPException(
                status_code=403,
                detail="this form has expired or did not come from the console: go back, "
                "reload the page and submit it again",
            )


def router(clients: Clients, pages: Pages, sessions: Sessions, limit: PublicRateLimit) -> APIRouter:
    """The console's pages."""
    console = APIRouter(include_in_schema=False)
    shared = _Console(clients, pages, sessions)
    _signing_in(console, shared, limit)
    _learners(console, shared)
    _operators(console, shared)
    return console


def _signing_in(console: APIRouter, shared: _Console, limit: PublicRateLimit) -> None:
    """Signing in and out, and the home page."""
    clients, pages, sessions = shared.clients, shared.pages, shared.sessions
    checked_form = shared.checked_form

    @console.get("/")
    def root() -> RedirectResponse:
        return _see_other("/console")

    @console.get("/console/login", dependencies=[Depends(limit)])
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        return pages.render(request, "login.html", message=None, next=_safe_next(next))

    @console.post("/console/login", dependencies=[Depends(limit)])
    def login(
        request: Request,
        token: Annotated[str, Form(max_length=200)],
        next: Annotated[str, Form(max_length=2000)] = "/console",
    ) -> Response:
        try:
            with clients.connection() as conn:
                found = tokens.authenticate(conn, token.strip())
        except TokenRefusedError as refused:
            return pages.render(
                request, "login.html", 401, message=str(refused), next=_safe_next(next)
            )
        request.state.staff = found.name
        response = _see_other(_safe_next(next))
        response.set_cookie(
            COOKIE,
            sessions.issue(found.token_id),
            max_age=MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=sessions.secure,
            path="/",
        )
        return response

    @console.post("/console/logout")
    def logout(request: Request, access: AnyStaff, csrf: Form_ = "") -> RedirectResponse:
        checked_form(request, csrf)
        response = _see_other("/console/login")
        response.delete_cookie(COOKIE, path="/")
        return response

    @console.get("/console")
    def home(request: Request, access: AnyStaff) -> HTMLResponse:
        return pages.render(request, "home.html", access=access)

    @console.get("/console/search")
    def search(
        access: AnyStaff,
        learner_id: Annotated[str, Query(min_length=1, max_length=200)],
    ) -> RedirectResponse:
        return _see_other(f"/console/learners/{quote(learner_id.strip(), safe='')}")


def _learners(console: APIRouter, shared: _Console) -> None:
    """The pages of one learner: progress, payments, why, history, who read it."""
    clients, pages = shared.clients, shared.pages

    @console.get("/console/learners/{learner_id}")
    def learner_page(
        request: Request, learner_id: LearnerId, access: SupportReading
    ) -> HTMLResponse:
        progress = learner_progress(access.conn, learner_id)
        if progress is None:
            return pages.render(request, "unknown.html", 404, access=access, learner_id=learner_id)
        payments = None
        if access.staff.holds(Role.FINANCE):
            payments = payments_of(access.conn, learner_id)
        return pages.render(
            request,
            "learner.html",
            access=access,
            progress=progress,
            certificates=certificates_of(access.conn, learner_id),
            payments=payments,
        )

    @console.get("/console/learners/{learner_id}/payments")
    def payments_page(
        request: Request, learner_id: LearnerId, access: FinanceReading
    ) -> HTMLResponse:
        found = payments_of(access.conn, learner_id)
        return pages.render(
            request, "payments.html", access=access, learner_id=learner_id, payments=found
        )

    @console.get("/console/learners/{learner_id}/why/{specialization_id}")
    def why_page(
        request: Request,
        learner_id: LearnerId,
        specialization_id: SpecializationId,
        access: SupportReading,
    ) -> HTMLResponse:
        try:
            answer = eligibility(access.conn, learner_id, specialization_id)
        except NotEnrolledError as error:
            return pages.problem(request, 404, "Not enrolled", str(error))
        if answer is None:
            return pages.render(request, "unknown.html", 404, access=access, learner_id=learner_id)
        return pages.render(request, "why.html", access=access, answer=answer)

    @console.get("/console/learners/{learner_id}/history")
    def history_page(
        request: Request,
        learner_id: LearnerId,
        access: AuditorReading,
        as_of: AsOf = None,
    ) -> HTMLResponse:
        if as_of == "":
            as_of = None
        try:
            moment = moment_of(as_of)
        except HTTPException as error:
            return pages.problem(request, 422, "That is not a time", str(error.detail))
        try:
            history = learner_history(clients.learner_ledger(learner_id), learner_id, moment)
        except UnknownLearnerError as error:
            return pages.problem(request, 404, "No history", str(error))
        return pages.render(request, "history.html", access=access, history=history, as_of=as_of)

    @console.get("/console/learners/{learner_id}/reads")
    def reads_page(request: Request, learner_id: LearnerId, access: Auditor) -> HTMLResponse:
        found = reads_of(access.conn, learner_id)
        return pages.render(
            request, "reads.html", access=access, learner_id=learner_id, reads=found
        )


def _operators(console: APIRouter, shared: _Console) -> None:
    """Rejected messages and their retry; the read models' lag and rebuilds."""
    clients, pages, settings = shared.clients, shared.pages, shared.settings
    checked_form = shared.checked_form

    @console.get("/console/rejections")
    def rejections_page(
        request: Request,
        access: Operator,
        reason: Annotated[str | None, Query(max_length=100, pattern="^[a-z_]*$")] = None,
    ) -> HTMLResponse:
        rows = rejections.newest(clients.shards(), 100, reason or None)
        return pages.render(
            request, "rejections.html", access=access, rejections=rows, reason=reason or ""
        )

    def _rejection(rejection_id: int) -> tuple[dict[str, object], bool]:
        try:
            ledger = rejections.keeper(clients.shards(), rejection_id)
            found = rejections.one(ledger, rejection_id)
        except NotFoundError as error:
            raise HTTPException(status_code=404, detail=str(error)) from None
        accepted = False
        if found.message_source and found.message_id:
            key = (found.message_source, found.message_id)
            accepted = key in ledger.ledger_recorder.accepted_digests([key])
        return rejections.as_json(found), accepted

    @console.get("/console/rejections/{rejection_id}")
    def rejection_page(
        request: Request,
        rejection_id: RejectionId,
        access: Operator,
        retried: bool = False,
    ) -> HTMLResponse:
        shown, accepted = _rejection(rejection_id)
        return pages.render(
            request,
            "rejection.html",
            access=access,
            rejection=shown,
            accepted=accepted,
            retried=retried,
        )

    @console.get("/console/rejections/{rejection_id}/retry")
    def retry_confirmation(
        request: Request, rejection_id: RejectionId, access: Operator
    ) -> HTMLResponse:
        shown, accepted = _rejection(rejection_id)
        return pages.render(
            request, "retry.html", access=access, rejection=shown, accepted=accepted
        )

    @console.post("/console/rejections/{rejection_id}/retry")
    def retry(
        request: Request,
        rejection_id: RejectionId,
        access: Operator,
        csrf: Form_ = "",
    ) -> RedirectResponse:
        checked_form(request, csrf)
        try:
            rejections.retry(clients.shards(), clients.publish, settings.intake_topic, rejection_id)
        except NotFoundError as error:
            raise HTTPException(status_code=404, detail=str(error)) from None
        return _see_other(f"/console/rejections/{rejection_id}?retried=true")

    @console.get("/console/projections")
    async def projections_page(request: Request, access: Operator) -> HTMLResponse:
        def read() -> tuple[object, object]:
            lags = projection_lag(access.conn, clients.kafka(), settings.events_topic)
            return lags, rebuilds.recent(access.conn)

        lags, recent = await run_in_threadpool(read)
        return pages.render(
            request,
            "projections.html",
            access=access,
            lags=lags,
            rebuilds=recent,
            models=[m.name for m in READ_MODELS],
        )

    @console.post("/console/projections/{name}/rebuild")
    def rebuild(request: Request, name: str, access: Operator, csrf: Form_ = "") -> Response:
        checked_form(request, csrf)
        try:
            rebuilds.start(
                settings, clients.services.get(), access.conn, name, access.staff.token.name
            )
        except KeyError as error:
            return pages.problem(request, 404, "No such read model", str(error.args[0]))
        except rebuilds.RebuildRunningError as error:
            return pages.problem(request, 409, "Already rebuilding", str(error))
        return _see_other("/console/projections")
