"""Who is asking: a staff token (API: `Authorization: Bearer`; console: a signed session), the
roles it holds, and the record of every read of a learner's data.

Each staff route depends on `api_access(...)` or `console_access(...)` with the roles that may
use it. The dependency lends the request one pooled connection, checks the credential and the
roles on it (401 without a credential or with a dead one, 403 with the wrong role, each saying
what is needed), records the read when the route shows a learner's data (before the data is
read: what reached anyone is always on record), and hands the route that same connection, so
a staff read costs one checkout. The token's name (never the token) is left on the request for
the access log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import Connection

from ledger.entrypoints.staff import reads, tokens
from ledger.entrypoints.staff.reads import Reader
from ledger.entrypoints.staff.roles import Role, needed
from ledger.entrypoints.staff.tokens import StaffToken, TokenRefusedError
from ledger.entrypoints.web.clients import Clients
from ledger.entrypoints.web.params import LearnerId
from ledger.entrypoints.web.sessions import COOKIE, SessionError, Sessions

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="staff token",
    description="A staff token, made by `ledger tokens create --name N --role R`.",
)


class NotSignedInError(Exception):
    """Raised when a staff route is asked without a live credential (401)."""


class WrongRoleError(Exception):
    """Raised when a credential holds none of the roles a route needs (403)."""


@dataclass(frozen=True)
class Staff:
    """A member of staff, as their token says, and how they came (`api` or `console`)."""

    token: StaffToken
    via: str

    @property
    def reader(self) -> Reader:
        return Reader(self.token.name, self.token.token_id, self.via)

    def holds(self, *roles: Role) -> bool:
        return not self.token.roles.isdisjoint(roles)


@dataclass(frozen=True)
class Access:
    """What a staff route works with: who is asking, and the request's connection."""

    staff: Staff
    conn: Connection[Any]

    def record_read(self, learner_id: str, what: str) -> None:
        reads.record(self.conn, self.staff.reader, learner_id, what)


def route_of(request: Request) -> str:
    """`GET /v1/learners/{learner_id}`: the route as declared, never the ids in the path."""
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', '?')}"


def _allowed(request: Request, token: StaffToken, via: str, roles: tuple[Role, ...]) -> Staff:
    staff = Staff(token, via)
    request.state.staff = staff.token.name
    if not staff.holds(*roles):
        held = ", ".join(sorted(r.value for r in token.roles))
        raise WrongRoleError(
            f"{route_of(request)} needs {needed(roles)}; token {token.token_id} "
            f"({token.name}) holds {held}"
        )
    return staff


def _clients(request: Request) -> Clients:
    clients: Clients = request.app.state.clients
    return clients


def _api_staff(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    roles: tuple[Role, ...],
    conn: Connection[Any],
) -> Staff:
    if credentials is None or not credentials.credentials:
        raise NotSignedInError(
            f"{route_of(request)} needs a staff token: send `Authorization: Bearer TOKEN` "
            f"(made by `ledger tokens create`) holding {needed(roles)}"
        )
    try:
        token = tokens.authenticate(conn, credentials.credentials)
    except TokenRefusedError as refused:
        raise NotSignedInError(str(refused)) from None
    return _allowed(request, token, "api", roles)


def api_access(*roles: Role, reads_learner: bool = False) -> Callable[..., Iterator[Access]]:
    """The dependency of an API route that `roles` may use (any one of them), and that works
    with the request's connection. With `reads_learner`, the route's `learner_id` is checked
    (FastAPI calls the dependency only once it is valid) and the read recorded."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Iterator[Access]:
        with _clients(request).connection() as conn:
            yield Access(_api_staff(request, credentials, roles, conn), conn)

    def reading(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        learner_id: LearnerId,
    ) -> Iterator[Access]:
        with _clients(request).connection() as conn:
            access = Access(_api_staff(request, credentials, roles, conn), conn)
            access.record_read(learner_id, route_of(request))
            yield access

    return reading if reads_learner else dependency


def api_staff(*roles: Role) -> Callable[..., Staff]:
    """The dependency of an API route that `roles` may use and that needs no connection of the
    request's own (the one that checks the token is handed back at once): who is asking."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Staff:
        with _clients(request).connection() as conn:
            return _api_staff(request, credentials, roles, conn)

    return dependency


def _console_staff(request: Request, roles: tuple[Role, ...], conn: Connection[Any]) -> Staff:
    sessions: Sessions = request.app.state.sessions
    try:
        token = tokens.by_id(conn, sessions.token_id(request.cookies.get(COOKIE)))
    except (SessionError, TokenRefusedError) as refused:
        raise NotSignedInError(str(refused)) from None
    return _allowed(request, token, "console", roles)


def console_access(*roles: Role, reads_learner: bool = False) -> Callable[..., Iterator[Access]]:
    """The dependency of a console page that `roles` may see (any one of them); with
    `reads_learner`, as `api_access`."""

    def dependency(request: Request) -> Iterator[Access]:
        with _clients(request).connection() as conn:
            yield Access(_console_staff(request, roles, conn), conn)

    def reading(request: Request, learner_id: LearnerId) -> Iterator[Access]:
        with _clients(request).connection() as conn:
            access = Access(_console_staff(request, roles, conn), conn)
            access.record_read(learner_id, route_of(request))
            yield access

    return reading if reads_learner else dependency
