"""Every route of the API and every page of the console, with the roles that may use it and
what it answers once let in: what the role matrix and the outage tests walk through."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from ledger.entrypoints.staff.roles import Role

#: A learner no message ever names: every read of them is a 404 once past the door.
NOBODY = "matrix-nobody"
#: Whom the publisher's event names (never NOBODY: a pipeline may apply it later).
PUBLISHED_LEARNER = "matrix-published"
PUBLIC: tuple[Role, ...] = ()


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    roles: tuple[Role, ...]  # empty: public
    allowed: frozenset[int]  # what it answers to a credential it accepts
    needs: frozenset[str]  # the services it cannot answer without: 503 while one is away
    body: dict[str, Any] = field(default_factory=dict)

    def ask(self, client: httpx.Client, headers: dict[str, str] | None = None) -> httpx.Response:
        """Ask the route with `headers` added to its own (a credential, say)."""
        body = dict(self.body)
        merged = {**body.pop("headers", {}), **(headers or {})}
        return client.request(self.method, self.path, headers=merged, **body)


PG = frozenset({"postgres"})
BOTH = frozenset({"postgres", "kafka"})
NONE: frozenset[str] = frozenset()


def _r(
    method: str,
    path: str,
    roles: tuple[Role, ...],
    *allowed: int,
    needs: frozenset[str] = PG,
    **body: Any,
) -> Route:
    return Route(method, path, roles, frozenset(allowed), needs, body)


ANY = tuple(Role)
#: The API's routes and what each answers, as `ledger.entrypoints.web.app` documents them. An
#: allowed read of a learner the ledger never saw is a 404 that says so: past the door.
API_ROUTES = [
    _r("GET", f"/v1/learners/{NOBODY}", (Role.SUPPORT,), 404),
    _r("GET", f"/v1/learners/{NOBODY}/eligibility/ds", (Role.SUPPORT,), 404),
    _r("GET", f"/v1/learners/{NOBODY}/payments", (Role.FINANCE,), 404),
    _r("GET", f"/v1/learners/{NOBODY}/history", (Role.AUDITOR,), 404),
    _r("GET", f"/v1/learners/{NOBODY}/history?as_of=2026-01-01", (Role.AUDITOR,), 200),
    _r("GET", f"/v1/learners/{NOBODY}/export", (Role.AUDITOR,), 404),
    _r("GET", f"/v1/learners/{NOBODY}/reads", (Role.AUDITOR,), 200),
    _r("GET", "/v1/stats/retention", ANY, 200),
    _r("GET", "/v1/rejections", (Role.OPERATOR,), 200),
    _r("GET", "/v1/rejections/999999", (Role.OPERATOR,), 404),
    _r("POST", "/v1/rejections/999999/retry", (Role.OPERATOR,), 404),
    _r("GET", "/v1/projections", (Role.OPERATOR,), 200, needs=BOTH),
    _r("GET", "/v1/projections/rebuilds", (Role.OPERATOR,), 200),
    _r("POST", "/v1/projections/payments/rebuild", (Role.OPERATOR,), 202, 409),
    _r("GET", "/metrics", (Role.OPERATOR,), 200, needs=BOTH),
    _r("POST", "/v1/events", (Role.PUBLISHER,), 400, content=b"[]"),
    _r(
        "POST",
        "/v1/events?valid",
        (Role.PUBLISHER,),
        202,
        needs=BOTH,
        content=json.dumps(
            {
                "specversion": "1.0",
                "id": "routes-1",
                "source": "urn:tests:routes",
                "type": "ledger.aid.granted.v1",
                "time": "2026-01-05T09:00:00+00:00",
                "subject": PUBLISHED_LEARNER,
                "data": {"learner_id": PUBLISHED_LEARNER, "course_id": "ds-1"},
            }
        ),
        headers={"content-type": "application/cloudevents+json"},
    ),
    _r("GET", "/v1/certificates/no-such-code", PUBLIC, 404),
    _r("GET", "/v1/certificates/no-such-code/credential", PUBLIC, 404),
    _r("GET", "/v1/status-lists/99999", PUBLIC, 404),
    _r("GET", "/.well-known/jwks.json", PUBLIC, 200, needs=NONE),
    _r("GET", "/.well-known/did.json", PUBLIC, 200, needs=NONE),
    _r("GET", "/healthz", PUBLIC, 200, needs=NONE),
    _r("GET", "/readyz", PUBLIC, 200, needs=BOTH),
    _r("GET", "/docs", PUBLIC, 200, needs=NONE),
    _r("GET", "/openapi.json", PUBLIC, 200, needs=NONE),
]
CONSOLE_PAGES = [
    _r("GET", "/console", ANY, 200),
    _r("GET", f"/console/learners/{NOBODY}", (Role.SUPPORT,), 404),
    _r("GET", f"/console/learners/{NOBODY}/why/ds", (Role.SUPPORT,), 404),
    _r("GET", f"/console/learners/{NOBODY}/payments", (Role.FINANCE,), 200),
    _r("GET", f"/console/learners/{NOBODY}/history", (Role.AUDITOR,), 404),
    _r("GET", f"/console/learners/{NOBODY}/reads", (Role.AUDITOR,), 200),
    _r("GET", "/console/rejections", (Role.OPERATOR,), 200),
    _r("GET", "/console/rejections/999999", (Role.OPERATOR,), 404),
    _r("GET", "/console/projections", (Role.OPERATOR,), 200, needs=BOTH),
    _r("GET", "/console/login", PUBLIC, 200, needs=NONE),
    _r("GET", "/certificates/no-such-code", PUBLIC, 404),
]
