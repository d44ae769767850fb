"""The API's last net: an error no handler answered becomes one JSON log line (with the
traceback) and a 500 whose body names that line, never a plain-text traceback; every request,
answered or not, is one `api.request` line without the ids of its path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Message, Receive, Scope, Send
from structlog.testing import capture_logs

from ledger.entrypoints.web.requestlog import RequestLog


class _Route:
    path = "/v1/learners/{learner_id}"


async def _failing(scope: Scope, receive: Receive, send: Send) -> None:
    scope["route"] = _Route()
    scope["state"]["staff"] = "sam@support"
    raise RuntimeError("a bug")


def _request(app: Any) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/learners/ada-lovelace",
        "client": ("10.0.0.7", 5000),
    }
    asyncio.run(RequestLog(app)(scope, receive, send))
    return sent


def test_an_unanswered_error_is_a_json_500_and_one_logged_line() -> None:
    with capture_logs() as logs:
        sent = _request(_failing)
    start, body = sent
    assert start["status"] == 500
    assert (b"content-type", b"application/json") in start["headers"]
    detail = json.loads(body["body"])["detail"]
    [error] = [line for line in logs if line["event"] == "api.error"]
    assert error["error_id"] in detail and error["log_level"] == "error"
    assert error["exc_info"] is True  # rendered as a field of the same JSON line
    [request] = [line for line in logs if line["event"] == "api.request"]
    assert request["status"] == 500 and request["staff"] == "sam@support"
    assert request["route"] == "/v1/learners/{learner_id}" and request["client"] == "10.0.0.7"
    assert "ada-lovelace" not in json.dumps(logs, default=str)  # ids stay out of the log
