"""The HTTP app, composed: the JSON API, the support console, the public routes, the docs.

Who may use what (the roles are `ledger.entrypoints.staff.roles`):

- anyone, rate-limited: certificate verification (`/v1/certificates/{code}` and the page
  `/certificates/{code}`), the signed credential (`.../credential`), the revocation status
  lists (`/v1/status-lists/{n}`), the issuer's keys (`/.well-known/did.json`,
  `/.well-known/jwks.json`), `/healthz`, `/readyz`; and, holding no data, `/docs`,
  `/openapi.json`, the console's sign-in page and its stylesheet;
- support: a learner's progress and "why" (`/v1/learners/{id}`, `.../eligibility/{s}`);
- finance: payments (`/v1/learners/{id}/payments`);
- auditor: histories, exports and who read what (`.../history`, `.../export`, `.../reads`);
- operator: rejections, read models and metrics (`/v1/rejections...`, `/v1/projections...`,
  `/metrics`);
- publisher: intake over HTTP (`POST /v1/events`);
- any staff role: figures across learners (`/v1/stats/retention`).

The console's pages follow the same roles.

`/docs` is Swagger UI served from the app's own files (`fastapi-offline`): it works with no
internet, as the console does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from ledger.credentials.issuing import Issuer
from ledger.entrypoints.staff.secrets import shared_secret
from ledger.entrypoints.web import (
    console,
    credentials,
    intake,
    learners,
    operations,
    problems,
    public,
)
from ledger.entrypoints.web.clients import Clients
from ledger.entrypoints.web.pages import STATIC, Pages
from ledger.entrypoints.web.ratelimit import PublicRateLimit
from ledger.entrypoints.web.requestlog import RequestLog
from ledger.entrypoints.web.sessions import Sessions
from ledger.settings import Settings

DESCRIPTION = """CloudEvents intake, the staff's read API, operations and public certificate
verification. Every route but the public ones needs a staff token (`ledger tokens create`),
sent as `Authorization: Bearer TOKEN`; each route's summary names the role it needs. Every
read of a learner's data is recorded (`GET /v1/learners/{learner_id}/reads`)."""


def create_app(settings: Settings) -> FastAPI:
    """The app. Where the services are is found on first use (the API answers `/healthz` while
    they come up); its connections are opened on first use and closed on shutdown."""
    clients = Clients(settings)

    def session_key() -> bytes:
        if settings.session_secret is not None:
            return settings.session_secret.get_secret_value().encode()
        with clients.connection() as conn:
            return shared_secret(conn, "console-session")

    sessions = Sessions(session_key, secure=settings.cookie_secure)
    pages = Pages(sessions)
    limit = PublicRateLimit(settings.public_rate_limit)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        clients.close()

    app = FastAPIOffline(
        title="Enrollment ledger",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.clients = clients
    app.state.sessions = sessions
    app.state.pages = pages
    problems.install(app)
    app.add_middleware(RequestLog)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(public.router(clients, pages, limit))
    app.include_router(credentials.router(clients, Issuer(settings), limit))
    app.include_router(intake.router(clients))
    app.include_router(learners.router(clients))
    app.include_router(operations.router(clients))
    app.include_router(console.router(clients, pages, sessions, limit))
    return app
