"""The HTTP face of the ledger (FastAPI): intake for services without a Kafka client.

`POST /v1/events` takes CloudEvents over HTTP, in every mode of the CloudEvents HTTP binding:
structured (`application/cloudevents+json`, one event), batched
(`application/cloudevents-batch+json` or a JSON array) and binary (`ce-*` headers, the data as
the JSON body). Each event is validated exactly as the intake worker validates it; if all are
valid they are published onto `ledger.intake` (keyed by subject) and the answer is 202 with
their ids; if any is not, nothing is published and the answer is 400 with every reason, by
index. The read API of the support staff joins this app (OpenAPI at `/docs`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from commands.cloudevents import STRUCTURED_CONTENT_TYPE, RejectedMessage, parse
from ledger.broker import OutRecord, Producer
from ledger.settings import Settings
from ledger.stack import services

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
MAX_BATCH = 10_000


class AcceptedEvent(BaseModel):
    source: str
    id: str
    type: str
    subject: str


class Accepted(BaseModel):
    """202: every event was valid and is on `ledger.intake`."""

    accepted: list[AcceptedEvent]
    topic: str


class EventError(BaseModel):
    index: Annotated[int, Field(description="Position of the event in the request (0 if one).")]
    reason: str
    message: str


class Rejected(BaseModel):
    """400: nothing was published; each bad event with its reason code and what was wrong."""

    errors: list[EventError]


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


def _bodies(request: Request, body: bytes) -> list[tuple[bytes, list[tuple[str, bytes | None]]]]:
    """The request as (value, headers) pairs, the way they would arrive from Kafka."""
    binary = _binary_headers(request)
    if any(name == "ce_specversion" for name, _ in binary):
        return [(body, binary)]
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [(body, [])]  # parse() reports it as not_json
    structured: list[tuple[str, bytes | None]] = [
        ("content-type", STRUCTURED_CONTENT_TYPE.encode())
    ]
    if isinstance(document, list):
        return [(json.dumps(item).encode(), structured) for item in document]
    return [(body, structured)]


def create_app(settings: Settings) -> FastAPI:
    """The app; its producer is connected on first use and closed on shutdown."""
    state: dict[str, Producer] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if "producer" in state:
            state.pop("producer").close()

    app = FastAPI(
        title="Enrollment ledger",
        version="1",
        description="CloudEvents intake and (soon) the support staff's read API.",
        lifespan=lifespan,
    )

    def producer() -> Producer:
        if "producer" not in state:
            state["producer"] = Producer(services.kafka_bootstrap(settings), "ledger-api")
        return state["producer"]

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        responses={400: {"model": Rejected}},
        summary="Publish CloudEvents onto ledger.intake, all or none",
    )
    async def post_events(request: Request) -> Any:
        body = await request.body()
        items = _bodies(request, body)
        if len(items) > MAX_BATCH:
            error = EventError(
                index=0,
                reason="too_many",
                message=f"{len(items)} events; send at most {MAX_BATCH} at once",
            )
            return JSONResponse(status_code=400, content=Rejected(errors=[error]).model_dump())
        accepted: list[AcceptedEvent] = []
        records: list[OutRecord] = []
        errors: list[EventError] = []
        if not items:
            errors.append(EventError(index=0, reason="empty", message="no event in the body"))
        for index, (value, headers) in enumerate(items):
            try:
                message = parse(value, headers)
            except RejectedMessage as rejected:
                errors.append(
                    EventError(index=index, reason=rejected.reason, message=rejected.message)
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
            records.append(
                OutRecord(settings.intake_topic, message.subject.encode(), value, headers)
            )
        if errors:
            return JSONResponse(status_code=400, content=Rejected(errors=errors).model_dump())
        producer().send_all(records)
        return Accepted(accepted=accepted, topic=settings.intake_topic)

    @app.get("/healthz", summary="The API process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
