"""What anyone may ask without a credential: is this certificate real and valid (as JSON and as
a page a learner can link to), is the API alive, is it ready. Each is rate-limited per client
address (`ratelimit`).

A revoked certificate is shown as revoked, with when and why, never as "not found" (K6): an
employer who was shown it must learn that it no longer stands, not wonder whether it ever did.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from ledger.broker import reachable
from ledger.entrypoints.web.clients import Clients
from ledger.entrypoints.web.pages import Pages
from ledger.entrypoints.web.ratelimit import PublicRateLimit
from projections.read_models.certificates import Certificate, verify
from projections.read_models.learner_progress import EnrollmentProgress, learner_progress

#: Verification codes are 20 characters of base64url (K4); anything else names no certificate.
VerificationCode = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The certificate's verification code.",
    ),
]


class NotFound(BaseModel):
    """404: the ledger's read models know nothing of that id (or have not caught up with it)."""

    detail: str


class Readiness(BaseModel):
    """Whether each service the API needs answers now."""

    status: str
    postgres: str
    kafka: str


def _no_certificate(code: str) -> HTTPException:
    return HTTPException(
        status_code=404,
        detail=f"no certificate has the verification code {code!r} (or not projected yet)",
    )


def _programmes(clients: Clients, cert: Certificate) -> list[EnrollmentProgress]:
    """The specializations a certificate speaks for: the one it was earned in, or, for a
    course, those of the learner's enrollments that hold the course."""
    with clients.connection() as conn:
        progress = learner_progress(conn, cert.learner_id)
    if progress is None:
        return []
    if cert.kind == "specialization":
        return [e for e in progress.enrollments if e.specialization_id == cert.subject][:1]
    return [e for e in progress.enrollments if any(c.course_id == cert.subject for c in e.courses)]


def router(clients: Clients, pages: Pages, limit: PublicRateLimit) -> APIRouter:
    """The public routes."""
    public = APIRouter(dependencies=[Depends(limit)], responses={429: {"model": NotFound}})

    def find(code: str) -> Certificate | None:
        with clients.connection() as conn:
            return verify(conn, code)

    @public.get(
        "/v1/certificates/{code}",
        responses={404: {"model": NotFound}},
        summary="Verify a certificate by its verification code: whose, what, valid or revoked "
        "(public)",
        tags=["public"],
    )
    def get_certificate(code: VerificationCode) -> Certificate:
        found = find(code)
        if found is None:
            raise _no_certificate(code)
        return found

    @public.get("/certificates/{code}", response_class=HTMLResponse, include_in_schema=False)
    def certificate_page(request: Request, code: VerificationCode) -> HTMLResponse:
        found = find(code)
        if found is None:
            return pages.problem(
                request,
                404,
                "No such certificate",
                f"No certificate has the verification code {code}. Check the code as it is "
                "printed on the certificate; a certificate issued moments ago may take a "
                "second to appear.",
            )
        return pages.render(
            request,
            "certificate.html",
            certificate=found,
            programmes=_programmes(clients, found),
        )

    @public.get("/healthz", summary="The API process is alive (public)", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    readiness = _Readiness(clients)

    @public.get(
        "/readyz",
        summary="PostgreSQL and Kafka answer (200), or which does not (503) (public)",
        tags=["operations"],
        responses={503: {"model": Readiness}},
    )
    def readyz() -> Any:
        answer = readiness.check()
        return JSONResponse(
            status_code=200 if answer.status == "ready" else 503, content=answer.model_dump()
        )

    return public


class _Readiness:
    """Asks each service, at most once a second whoever polls: a load balancer's probes and a
    person's refreshes must not become load themselves."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self._last: tuple[float, Readiness] | None = None

    def check(self) -> Readiness:
        now = time.monotonic()
        if self._last is not None and now - self._last[0] < 1.0:
            return self._last[1]
        answer = self._ask()
        self._last = (now, answer)
        return answer

    def _ask(self) -> Readiness:
        postgres = kafka = "ok"
        try:
            with self.clients.connection() as conn:
                conn.execute("SELECT 1")
        except Exception as error:  # noqa: BLE001 - any failure is "not ready", said in words
            postgres = " ".join(str(error).split())[:200] or type(error).__name__
        try:
            services = self.clients.services.get()
            if not reachable(services.kafka_bootstrap):
                kafka = f"no broker accepts connections at {services.kafka_bootstrap}"
        except Exception as error:  # noqa: BLE001
            kafka = " ".join(str(error).split())[:200] or type(error).__name__
        ready = postgres == "ok" and kafka == "ok"
        return Readiness(status="ready" if ready else "not ready", postgres=postgres, kafka=kafka)
