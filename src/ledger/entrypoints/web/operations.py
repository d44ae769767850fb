"""The operators' routes (the `operator` role): rejected messages and their retry, each read
model's lag and its rebuild, and `/metrics` for Prometheus (which scrapes with a bearer token:
`authorization: {credentials_file: ...}` in its scrape config)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ledger.entrypoints import rebuilds, rejections
from ledger.entrypoints.metrics import CONTENT_TYPE, LedgerCollector, exposition, registry
from ledger.entrypoints.staff.roles import Role
from ledger.entrypoints.web.auth import Access, Staff, api_access, api_staff
from ledger.entrypoints.web.clients import Clients
from ledger.errors import NotFoundError
from projections.catalog import READ_MODELS
from projections.status import projection_lag

ReadModelName = Annotated[
    str,
    Path(
        pattern="^(" + "|".join(m.name for m in READ_MODELS) + ")$",
        description="One of the read models: " + ", ".join(m.name for m in READ_MODELS) + ".",
    ),
]
RejectionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The rejection's id.")]


Operator = Annotated[Access, Depends(api_access(Role.OPERATOR))]
OperatorOnly = Annotated[Staff, Depends(api_staff(Role.OPERATOR))]


class Lag(BaseModel):
    """How far one read model is on one partition of ledger.events."""

    read_model: str
    schema_name: str
    partition: int
    applied_up_to: int
    end: int
    behind: int


class RebuildStarted(BaseModel):
    """202: the rebuild runs in the API process; `GET /v1/projections/rebuilds` shows it."""

    rebuild_id: int
    read_model: str


class Rebuild(BaseModel):
    rebuild_id: int
    read_model: str
    requested_by: str
    running: bool
    percent: float
    done: int
    total: int
    outcome: str | None


def _not_found(error: NotFoundError) -> HTTPException:
    return HTTPException(status_code=404, detail=str(error))


def router(clients: Clients) -> APIRouter:
    """The operators' routes."""
    operations = APIRouter(tags=["operations"])
    settings = clients.settings

    @operations.get(
        "/v1/rejections", summary="The newest rejected messages, with their reason (operator)"
    )
    def get_rejections(
        _: OperatorOnly,
        reason: Annotated[str | None, Query(max_length=100, pattern="^[a-z_]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    ) -> list[dict[str, Any]]:
        return [rejections.as_json(r) for r in rejections.newest(clients.shards(), limit, reason)]

    @operations.get(
        "/v1/rejections/{rejection_id}",
        summary="One rejected message: the reason, and the original bytes and headers (operator)",
    )
    def get_rejection(rejection_id: RejectionId, _: OperatorOnly) -> dict[str, Any]:
        try:
            return rejections.as_json(rejections.one(clients.shards(), rejection_id))
        except NotFoundError as error:
            raise _not_found(error) from None

    @operations.post(
        "/v1/rejections/{rejection_id}/retry",
        summary="Re-submit a rejected message, unchanged, onto ledger.intake (operator)",
    )
    def post_retry(rejection_id: RejectionId, _: OperatorOnly) -> dict[str, Any]:
        try:
            rejections.retry(clients.shards(), clients.publish, settings.intake_topic, rejection_id)
        except NotFoundError as error:
            raise _not_found(error) from None
        return {"retried": rejection_id, "topic": settings.intake_topic}

    @operations.get("/v1/projections", summary="Each read model's lag per partition (operator)")
    def get_projections(access: Operator) -> list[Lag]:
        lags = projection_lag(access.conn, clients.kafka(), settings.events_topic)
        return [
            Lag(
                read_model=lag.projection,
                schema_name=lag.schema,
                partition=lag.partition,
                applied_up_to=lag.done,
                end=lag.end,
                behind=lag.behind,
            )
            for lag in lags
        ]

    @operations.post(
        "/v1/projections/{name}/rebuild",
        status_code=202,
        responses={409: {"description": "That read model is being rebuilt already."}},
        summary="Rebuild a read model from the start of ledger.events, beside the live one "
        "(operator)",
    )
    def post_rebuild(name: ReadModelName, access: Operator) -> RebuildStarted:
        try:
            rebuild_id = rebuilds.start(
                settings, clients.services.get(), access.conn, name, access.staff.token.name
            )
        except rebuilds.RebuildRunningError as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        return RebuildStarted(rebuild_id=rebuild_id, read_model=name)

    @operations.get(
        "/v1/projections/rebuilds", summary="Rebuilds asked for, and how far each is (operator)"
    )
    def get_rebuilds(access: Operator) -> list[Rebuild]:
        return [
            Rebuild(
                rebuild_id=r.rebuild_id,
                read_model=r.read_model,
                requested_by=r.requested_by,
                running=r.running,
                percent=round(r.percent, 1),
                done=r.done,
                total=r.total,
                outcome=r.outcome,
            )
            for r in rebuilds.recent(access.conn)
        ]

    metrics_registry = registry(
        LedgerCollector(settings, clients.services.get, clients.shards, clients.connection)
    )

    @operations.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {"description": "Prometheus text exposition format, version 0.0.4."},
            503: {"description": "PostgreSQL or Kafka did not answer; the JSON `detail` says."},
        },
        summary="Consumer lag, throughput, rejections and worker heartbeats, for Prometheus "
        "(operator)",
    )
    async def get_metrics(_: OperatorOnly) -> PlainTextResponse:
        await run_in_threadpool(clients.kafka)  # at once, not after kafka-python's timeouts
        text = await run_in_threadpool(exposition, metrics_registry)
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    return operations
