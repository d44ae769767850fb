"""`POST /v1/events`: CloudEvents over HTTP, for services without a Kafka client (the
`publisher` role).

It takes every mode of the CloudEvents HTTP binding: structured (`application/cloudevents+json`,
one event), batched (`application/cloudevents-batch+json` or a JSON array) and binary (`ce-*`
headers, the data as the JSON body). Each event is validated exactly as the intake worker
validates it; if all are valid they are published onto `ledger.intake` (keyed by subject) and
the answer is 202 with their ids; if any is not, nothing is published and the answer is 400 with
every reason, by index. The OpenAPI document shows the envelope and an example of every type,
the very examples of `schemas/inbound/`.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from commands.cloudevents import STRUCTURED_CONTENT_TYPE, Envelope, RejectionError, parse
from commands.messages import MESSAGE_TYPES
from ledger.broker import OutRecord
from ledger.entrypoints.schemas import inbound_example
from ledger.entrypoints.staff.roles import Role
from ledger.entrypoints.web.auth import Staff, api_staff
from ledger.entrypoints.web.clients import Clients

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
MAX_BATCH = 10_000
#: The largest request body `POST /v1/events` reads (a full batch of ordinary events fits).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Content types `POST /v1/events` reads; a request without one is read as JSON too.
JSON_CONTENT_TYPES = ("application/json", STRUCTURED_CONTENT_TYPE, BATCH_CONTENT_TYPE)


class AcceptedEvent(BaseModel):
    source: str
    id: str
    type: str
    subject: str


class Accepted(BaseModel):
    """202: every event was valid and is on `ledger.intake`."""

    accepted: list[AcceptedEvent]
    topic: str


class EventRejection(BaseModel):
    index: Annotated[int, Field(description="Position of the event in the request (0 if one).")]
    reason: str
    message: str


class Rejections(BaseModel):
    """400: nothing was published; each bad event with its reason code and what was wrong."""

    errors: list[EventRejection]


class BodyError(Exception):
    """Raised when a request body cannot be read as events at all; carries the HTTP status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def _binary_headers(request: Request) -> list[tuple[str, bytes | None]]:
    """CloudEvents HTTP binary mode (`ce-id`, ...) as the Kafka binding's `ce_` headers."""
    headers: list[tuple[str, bytes | None]] = [
        (f"ce_{name[3:]}", value.encode())
        for name, value in request.headers.items()
        if name.lower().startswith("ce-")
    ]
    content_type = request.headers.get("content-type")
    if content_type:
        headers.append(("content-type", content_type.encode()))
    return headers


def _media_type(request: Request) -> str | None:
    value = request.headers.get("content-type")
    return value.split(";", 1)[0].strip().lower() if value else None


async def _read_body(request: Request) -> bytes:
    """The body, refused (413) once it grows past `MAX_BODY_BYTES`, whatever it declares."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _bodies(request: Request, body: bytes) -> list[tuple[bytes, list[tuple[str, bytes | None]]]]:
    """The request as (value, headers) pairs, the way they would arrive from Kafka.

    JSON is read by orjson, as the intake reads it: it refuses nesting deeper than 1,024 and
    numbers past a double's range with a JSONDecodeError (the standard module raised
    RecursionError and ValueError, answered as 500s).
    """
    binary = _binary_headers(request)
    media = _media_type(request)
    if any(name == "ce_specversion" for name, _ in binary):
        return [(body, binary)]
    if media is not None and media not in JSON_CONTENT_TYPES:
        raise BodyError(
            415,
            "unsupported_media_type",
            f"content type {media!r} is not a CloudEvent: send {STRUCTURED_CONTENT_TYPE}, "
            f"{BATCH_CONTENT_TYPE}, or binary mode (ce-* headers and an application/json body)",
        )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [(body, [])]  # parse() reports it as not_json
    structured: list[tuple[str, bytes | None]] = [
        ("content-type", STRUCTURED_CONTENT_TYPE.encode())
    ]
    if isinstance(document, list):
        return [(orjson.dumps(item), structured) for item in document]
    return [(body, structured)]


def request_body() -> dict[str, Any]:
    """The OpenAPI description of the body: the envelope, and an example of every type."""
    envelope = Envelope.model_json_schema()
    envelope["properties"]["data"] = {
        "type": "object",
        "description": "The message's data; its JSON Schema is "
        "`schemas/inbound/<type>.schema.json`.",
    }
    envelope["required"] = [*envelope["required"], "data"]
    examples = {
        ce_type: {"summary": ce_type, "value": inbound_example(model)}
        for ce_type, model in sorted(MESSAGE_TYPES.items())
    }
    first, second = list(examples.values())[:2]
    return {
        "required": True,
        "content": {
            STRUCTURED_CONTENT_TYPE: {"schema": envelope, "examples": examples},
            BATCH_CONTENT_TYPE: {
                "schema": {"type": "array", "items": envelope, "maxItems": MAX_BATCH},
                "examples": {"two events": {"value": [first["value"], second["value"]]}},
            },
        },
    }


def _refused(status: int, errors: list[EventRejection]) -> JSONResponse:
    return JSONResponse(status_code=status, content=Rejections(errors=errors).model_dump())


def router(clients: Clients) -> APIRouter:
    intake = APIRouter(tags=["intake"])
    topic = clients.settings.intake_topic

    @intake.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        responses={
            400: {"model": Rejections},
            413: {"model": Rejections, "description": "The body is too large."},
            415: {"model": Rejections, "description": "The body is not JSON CloudEvents."},
        },
        summary="Publish CloudEvents onto ledger.intake, all or none (publisher)",
        openapi_extra={"requestBody": request_body()},
    )
    async def post_events(
        request: Request, _: Annotated[Staff, Depends(api_staff(Role.PUBLISHER))]
    ) -> Any:
        try:
            items = _bodies(request, await _read_body(request))
        except BodyError as problem:
            refused = EventRejection(index=0, reason=problem.reason, message=problem.message)
            return _refused(problem.status, [refused])
        if len(items) > MAX_BATCH:
            too_many = f"{len(items)} events; send at most {MAX_BATCH} at once"
            return _refused(400, [EventRejection(index=0, reason="too_many", message=too_many)])
        accepted: list[AcceptedEvent] = []
        records: list[OutRecord] = []
        errors: list[EventRejection] = []
        if not items:
            errors.append(EventRejection(index=0, reason="empty", message="no event in the body"))
        for index, (value, headers) in enumerate(items):
            try:
                message = parse(value, headers)
            except RejectionError as rejected:
                errors.append(
                    EventRejection(index=index, reason=rejected.reason, message=rejected.message)
                )
                continue
            accepted.append(
                AcceptedEvent(
                    source=message.source,
                    id=message.message_id,
                    type=message.type,
                    subject=message.subject,
                )
            )
            records.append(OutRecord(topic, message.subject.encode(), value, headers))
        if errors:
            return _refused(400, errors)
        await run_in_threadpool(clients.publish, records)
        return Accepted(accepted=accepted, topic=topic)

    return intake
