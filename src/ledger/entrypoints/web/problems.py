"""What a request gets when something stands in its way, in JSON for the API and as a page for
the console: each status says whose the problem is, each message what to do.

- 401: no credential, or one that opens nothing (unknown, revoked, expired); the console shows
  its sign-in form instead, with the reason.
- 403: a credential without the role the route needs; the message names the role.
- 503: PostgreSQL or Kafka did not answer, or a read model has no tables yet. Nothing is cached
  as broken: the next request tries again, so the API recovers by itself when they are back.
- 400: a value that reached PostgreSQL and could not be looked up (a safety net: every parameter
  is checked before that).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ledger.broker import BrokerUnavailableError
from ledger.credentials.issuer import IssuerKeyError
from ledger.entrypoints.web.auth import NotSignedInError, WrongRoleError
from ledger.errors import ConfigurationError, StackError
from projections.generations import NoLiveGenerationError

if TYPE_CHECKING:
    from ledger.entrypoints.web.pages import Pages

#: Errors that mean "a service the request needs is not there right now".
UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,  # the pool's timeout (PoolTimeout) among them
    psycopg.InterfaceError,
    StoreOperationalError,
    StoreInterfaceError,
    BrokerUnavailableError,
    NoLiveGenerationError,
    StackError,  # the embedded PostgreSQL is not running (yet)
    ConfigurationError,
    IssuerKeyError,  # no key to sign credentials with: `ledger issuer init`
)


def is_page(request: Request) -> bool:
    """Whether the request is for a page (the console, the public certificate page)."""
    path = request.url.path
    return path == "/" or path.startswith(("/console", "/certificates/"))


def _pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def _unavailable_detail(error: Exception) -> str:
    detail = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, psycopg.Error | StoreOperationalError | StoreInterfaceError):
        return f"PostgreSQL did not answer ({detail}): check `ledger stack status`"
    return detail


async def unavailable(request: Request, error: Exception) -> Response:
    detail = _unavailable_detail(error)
    if is_page(request):
        return _pages(request).problem(request, 503, "The ledger cannot answer right now", detail)
    return JSONResponse(status_code=503, content={"detail": detail}, headers={"Retry-After": "5"})


async def not_signed_in(request: Request, error: Exception) -> Response:
    if is_page(request):
        return _pages(request).sign_in(request, str(error), status=401)
    return JSONResponse(
        status_code=401, content={"detail": str(error)}, headers={"WWW-Authenticate": "Bearer"}
    )


async def wrong_role(request: Request, error: Exception) -> Response:
    if is_page(request):
        return _pages(request).problem(request, 403, "Not for this role", str(error))
    return JSONResponse(status_code=403, content={"detail": str(error)})


async def unstorable(request: Request, error: Exception) -> Response:
    detail = f"a value of the request cannot be looked up: {error}"
    if is_page(request):
        return _pages(request).problem(request, 400, "That cannot be looked up", detail)
    return JSONResponse(status_code=400, content={"detail": detail})


async def http_problem(request: Request, error: Exception) -> Response:
    """Starlette's own (404 of an unknown path, 405, 422 ...): JSON as FastAPI gives it, a page
    for pages."""
    if not isinstance(error, HTTPException):  # pragma: no cover - registered for it alone
        raise error
    if is_page(request):
        return _pages(request).problem(
            request, error.status_code, "Nothing here", str(error.detail), headers=error.headers
        )
    return JSONResponse(
        status_code=error.status_code, content={"detail": error.detail}, headers=error.headers
    )


async def invalid_request(request: Request, error: Exception) -> Response:
    """A value of the request that is not what the route takes: FastAPI's 422 for the API, a
    page saying which value for pages."""
    if not isinstance(error, RequestValidationError):  # pragma: no cover - registered for it
        raise error
    if is_page(request):
        said = "; ".join(
            f"{'.'.join(str(part) for part in e.get('loc', ())[1:]) or 'the request'}: "
            f"{e.get('msg', 'not valid')}"
            for e in error.errors()
        )
        return _pages(request).problem(request, 422, "That cannot be looked up", said)
    return await request_validation_exception_handler(request, error)


def install(app: FastAPI) -> None:
    """Register every handler above on the app."""
    for error in UNAVAILABLE:
        app.add_exception_handler(error, unavailable)
    app.add_exception_handler(NotSignedInError, not_signed_in)
    app.add_exception_handler(WrongRoleError, wrong_role)
    app.add_exception_handler(psycopg.DataError, unstorable)
    app.add_exception_handler(HTTPException, http_problem)
    app.add_exception_handler(RequestValidationError, invalid_request)
