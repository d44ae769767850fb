"""The HTTP face of the ledger (FastAPI): intake for services without a Kafka client, the
support staff's read API, and metrics for Prometheus.

`POST /v1/events` takes CloudEvents over HTTP, in every mode of the CloudEvents HTTP binding:
structured (`application/cloudevents+json`, one event), batched
(`application/cloudevents-batch+json` or a JSON array) and binary (`ce-*` headers, the data as
the JSON body). Each event is validated exactly as the intake worker validates it; if all are
valid they are published onto `ledger.intake` (keyed by subject) and the answer is 202 with
their ids; if any is not, nothing is published and the answer is 400 with every reason, by
index.

The read API answers from the read models in PostgreSQL, through the same queries as the
`ledger learner|certificate|stats` commands, so the CLI and HTTP never disagree:
`GET /v1/learners/{id}` (progress), `.../eligibility/{specialization}` (what is missing, item by
item), `.../payments`, `GET /v1/certificates/{code}` (verify) and `GET /v1/stats/retention`.
An id the read models have not seen is a 404 whose `detail` says so; a read model lagging
behind looks the same, hence "(or not projected yet)". `GET /metrics` is the pipeline's lag and
throughput (see `ledger.entrypoints.metrics`). OpenAPI at `/docs`.

Every connection is opened on first use, so the API starts (and `/healthz` answers) while
PostgreSQL or Kafka are still coming up; a request that needs one that is down gets a 503
saying which.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from datetime import date
from typing import Annotated, Any, Generic, TypeVar

import orjson
import psycopg
from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from psycopg_pool import ConnectionPool
from pydantic import AfterValidator, BaseModel, Field

from commands.cloudevents import STRUCTURED_CONTENT_TYPE, RejectionError, parse
from commands.limits import storable
from ledger.application import Ledger
from ledger.broker import BrokerUnavailableError, OutRecord, Producer
from ledger.entrypoints import bootstrap
from ledger.entrypoints.metrics import CONTENT_TYPE, LedgerCollector, exposition, registry
from ledger.errors import ConfigurationError, StackError
from ledger.settings import Services, Settings
from projections.generations import NoLiveGenerationError
from projections.read_models import retention
from projections.read_models.certificates import Certificate, verify
from projections.read_models.eligibility import Eligibility, NotEnrolledError, eligibility
from projections.read_models.learner_progress import LearnerProgress, learner_progress
from projections.read_models.payments import Payment, payments_of

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
MAX_BATCH = 10_000
#: The largest request body `POST /v1/events` reads (a full batch of ordinary events fits).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Content types `POST /v1/events` reads; a request without one is read as JSON too.
JSON_CONTENT_TYPES = ("application/json", STRUCTURED_CONTENT_TYPE, BATCH_CONTENT_TYPE)

#: An id in a path or query: text the read models can hold, of a sane length. A NUL or a
#: surrogate would otherwise reach PostgreSQL and come back as a 500.
Id = Annotated[str, AfterValidator(storable)]
LearnerId = Annotated[Id, Path(min_length=1, max_length=200, description="The learner's id.")]
SpecializationId = Annotated[
    Id, Path(min_length=1, max_length=200, description="The specialization's id.")
]
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


class NotFound(BaseModel):
    """404: the ledger's read models know nothing of that id (or have not caught up with it)."""

    detail: str


class Unavailable(BaseModel):
    """503: PostgreSQL or Kafka did not answer, or a read model has no tables yet."""

    detail: str


class RetentionRow(BaseModel):
    """One specialization and enrollment month of the retention funnel, with its rates."""

    specialization_id: str
    month: Annotated[date, Field(description="First day of the month enrolled in.")]
    registered: Annotated[int, Field(description="Enrollments.")]
    with_intent: Annotated[int, Field(description="Enrollments that ever stated intent.")]
    payers: Annotated[int, Field(description="Enrollments with a course of theirs paid.")]
    completed: Annotated[int, Field(description="Holding a live specialization certificate.")]
    completed_with_intent: int
    completed_payers: int
    completion_rate: Annotated[
        float | None, Field(description="completed / registered, percent; null if none.")
    ]
    intent_completion_rate: Annotated[
        float | None, Field(description="completed_with_intent / with_intent, percent.")
    ]
    payer_completion_rate: Annotated[
        float | None, Field(description="completed_payers / payers, percent.")
    ]


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": NotFound}}

T = TypeVar("T")

#: Lends a pooled PostgreSQL connection for the length of a `with` block.
Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


class Lazy(Generic[T]):
    """A client (producer, pool, ledger) opened on first use and closed on shutdown, once
    however many threads ask: the read endpoints are plain functions that FastAPI runs in its
    thread pool, so two first requests can arrive together."""

    def __init__(self, open_: Callable[[], T], close: Callable[[T], None]) -> None:
        self._open = open_
        self._close = close
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._open()
            return self._value

    def close(self) -> None:
        with self._lock:
            if self._value is not None:
                self._close(self._value)
                self._value = None


def _unknown_learner(learner_id: str) -> HTTPException:
    return HTTPException(
        status_code=404,
        detail=f"learner {learner_id!r} is not known to the ledger (or not projected yet)",
    )


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


class BodyError(Exception):
    """Raised when a request body cannot be read as events at all; carries the HTTP status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


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


def _support_routes(connection: Connect) -> APIRouter:
    """The support staff's questions, each answered by the read-model query the CLI uses."""
    router = APIRouter(tags=["support"], responses={503: {"model": Unavailable}})

    @router.get(
        "/v1/learners/{learner_id}",
        responses=NOT_FOUND,
        summary="Where a learner is in each specialization they enrolled in",
    )
    def get_learner(learner_id: LearnerId) -> LearnerProgress:
        with connection() as conn:
            progress = learner_progress(conn, learner_id)
        if progress is None:
            raise _unknown_learner(learner_id)
        return progress

    @router.get(
        "/v1/learners/{learner_id}/eligibility/{specialization_id}",
        responses=NOT_FOUND,
        summary="Is the learner eligible for the certificate, and if not, what is missing",
    )
    def get_eligibility(learner_id: LearnerId, specialization_id: SpecializationId) -> Eligibility:
        with connection() as conn:
            try:
                answer = eligibility(conn, learner_id, specialization_id)
            except NotEnrolledError as error:
                raise HTTPException(status_code=404, detail=str(error)) from None
        if answer is None:
            raise _unknown_learner(learner_id)
        return answer

    @router.get(
        "/v1/learners/{learner_id}/payments",
        responses=NOT_FOUND,
        summary="A learner's payments, oldest first, and what became of each",
    )
    def get_payments(learner_id: LearnerId) -> list[Payment]:
        with connection() as conn:
            found = payments_of(conn, learner_id)
            # No payments may mean a learner who paid nothing yet or one never seen: only then
            # is the (heavier) progress query worth asking.
            if not found and learner_progress(conn, learner_id) is None:
                raise _unknown_learner(learner_id)
        return found

    @router.get(
        "/v1/certificates/{code}",
        responses=NOT_FOUND,
        summary="Verify a certificate by its verification code: whose, what, valid or revoked",
    )
    def get_certificate(code: VerificationCode) -> Certificate:
        with connection() as conn:
            found = verify(conn, code)
        if found is None:
            raise HTTPException(
                status_code=404,
                detail=f"no certificate has the verification code {code!r} (or not projected yet)",
            )
        return found

    @router.get(
        "/v1/stats/retention",
        response_model=list[RetentionRow],
        summary="Completion per specialization and enrollment month: of all, of intent, of payers",
    )
    def get_retention(
        specialization: Annotated[
            Id | None,
            Query(max_length=200, description="Only this specialization (default: all of them)."),
        ] = None,
    ) -> list[dict[str, Any]]:
        with connection() as conn:
            rows = retention.funnel(conn, specialization)
        return [row.as_dict() for row in rows]

    return router


def create_app(settings: Settings) -> FastAPI:
    """The app; where the services are is found on first use (the API answers `/healthz`
    while they come up), and its producer, database pool and ledger are opened on first use
    and closed on shutdown."""
    found: Lazy[Services] = Lazy(lambda: bootstrap.services(settings), lambda _: None)
    producer = Lazy(lambda: Producer(found.get().kafka_bootstrap, "ledger-api"), Producer.close)
    pool: Lazy[ConnectionPool] = Lazy(
        lambda: ConnectionPool(
            found.get().database_url,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=8,
            timeout=10.0,
            open=True,
            name="ledger-api",
        ),
        ConnectionPool.close,
    )
    ledger = Lazy(lambda: bootstrap.open_ledger(found.get()), Ledger.close)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for resource in (producer, pool, ledger):
            resource.close()

    app = FastAPI(
        title="Enrollment ledger",
        version="1",
        description="CloudEvents intake, the support staff's read API and pipeline metrics.",
        lifespan=lifespan,
    )

    async def unavailable(_: Request, error: Exception) -> JSONResponse:
        # Kafka's and the read models' errors name themselves; the pool's ("couldn't get a
        # connection after 10.00 sec") does not.
        detail = str(error)
        if isinstance(error, psycopg.OperationalError):
            detail = f"PostgreSQL did not answer ({detail}): check `ledger stack status`"
        return JSONResponse(status_code=503, content={"detail": detail})

    for error in (
        psycopg.OperationalError,
        BrokerUnavailableError,
        NoLiveGenerationError,
        StackError,  # the embedded PostgreSQL is not running (yet)
        ConfigurationError,
    ):
        app.add_exception_handler(error, unavailable)

    async def unstorable(_: Request, error: Exception) -> JSONResponse:
        # A safety net: every parameter is checked before it reaches PostgreSQL, so this
        # would be a value the checks missed, which is the client's, not a server error.
        return JSONResponse(
            status_code=400,
            content={"detail": f"a value of the request cannot be looked up: {error}"},
        )

    app.add_exception_handler(psycopg.DataError, unstorable)

    @contextmanager
    def connection() -> Iterator[psycopg.Connection[Any]]:
        with pool.get().connection() as conn:
            yield conn

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        responses={
            400: {"model": Rejections},
            413: {"model": Rejections, "description": "The body is too large."},
            415: {"model": Rejections, "description": "The body is not JSON CloudEvents."},
        },
        summary="Publish CloudEvents onto ledger.intake, all or none",
        tags=["intake"],
    )
    async def post_events(request: Request) -> Any:
        try:
            items = _bodies(request, await _read_body(request))
        except BodyError as problem:
            refused = EventRejection(index=0, reason=problem.reason, message=problem.message)
            return JSONResponse(
                status_code=problem.status, content=Rejections(errors=[refused]).model_dump()
            )
        if len(items) > MAX_BATCH:
            error = EventRejection(
                index=0,
                reason="too_many",
                message=f"{len(items)} events; send at most {MAX_BATCH} at once",
            )
            return JSONResponse(status_code=400, content=Rejections(errors=[error]).model_dump())
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
            records.append(
                OutRecord(settings.intake_topic, message.subject.encode(), value, headers)
            )
        if errors:
            return JSONResponse(status_code=400, content=Rejections(errors=errors).model_dump())
        producer.get().send_all(records)
        return Accepted(accepted=accepted, topic=settings.intake_topic)

    app.include_router(_support_routes(connection))
    metrics_registry = registry(LedgerCollector(settings, found.get, ledger.get, connection))

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {"description": "Prometheus text exposition format, version 0.0.4."},
            503: {"description": "PostgreSQL or Kafka did not answer; the JSON `detail` says."},
        },
        summary="Consumer lag, throughput and rejections, in Prometheus text format",
        tags=["operations"],
    )
    def get_metrics() -> PlainTextResponse:
        return PlainTextResponse(exposition(metrics_registry), media_type=CONTENT_TYPE)

    @app.get("/healthz", summary="The API process is up", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
