"""One JSON log line per request, and every unexpected error as a log line and a 500 in JSON.

`api.request`: method, route (as declared: `/v1/learners/{learner_id}`, so learner ids, which
are personal data, stay out of the log), status, duration in milliseconds, the client's address
and the name of the staff token (never the token: the `Authorization` header and the session
cookie are not read here). An error no handler answered is logged once as `api.error` with its
traceback in the same JSON line, and the client gets a 500 whose `detail` names the log line to
look for; it never reaches the server as a plain-text traceback.

A plain ASGI middleware, not Starlette's `BaseHTTPMiddleware`: it adds no task or stream copy
to each request (the support queries' latency budget is a few milliseconds).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.logs import get_logger

log = get_logger("ledger.api")


class RequestLog:
    """Wraps the app: logs each HTTP request once, and answers what escaped it with a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:  # the last net: logged, answered, never a raw traceback
            error_id = secrets.token_hex(4)
            log.exception("api.error", error_id=error_id, **_fields(scope))
            if status == 0:
                status = 500
                await _internal_error(send, error_id)
        finally:
            log.info(
                "api.request",
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 2),
                **_fields(scope),
            )


def _fields(scope: Scope) -> dict[str, Any]:
    route = scope.get("route")
    client = scope.get("client")
    return {
        "method": scope.get("method"),
        "route": getattr(route, "path", None) or "(no route)",
        "client": client[0] if client else None,
        "staff": scope.get("state", {}).get("staff"),
    }


async def _internal_error(send: Send, error_id: str) -> None:
    body = orjson.dumps(
        {"detail": f"the ledger failed on this request; its log has it as api.error {error_id}"}
    )
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
