"""CloudEvents 1.0 over Kafka: structured mode and binary mode read into one `InboundMessage`.

Structured mode carries the whole event as the JSON value (`content-type:
application/cloudevents+json`); binary mode carries the attributes as `ce_` headers and the
`data` as the JSON value. Both give the same `InboundMessage` and the same content digest, so a
publisher may switch modes without its retries looking like conflicts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from commands.limits import BusinessTime, Text
from commands.messages import MESSAGE_TYPES, MessageData

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BINARY_PREFIX = "ce_"


class RejectionError(Exception):
    """Raised when a message cannot be accepted: the rejection kept with it
    (`ledger.store.Rejection`) gets this `reason` code and `message`."""

    def __init__(
        self, reason: str, message: str, *, source: str | None = None, message_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.source = source
        self.message_id = message_id


class Envelope(BaseModel):
    """The CloudEvents context attributes the ledger requires (DESIGN §4)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: str = Field(pattern=r"^1\.0$")
    id: Text = Field(min_length=1, max_length=200)
    source: Text = Field(min_length=1, max_length=500)
    type: Text = Field(min_length=1, max_length=200)
    time: BusinessTime
    subject: Text = Field(min_length=1, max_length=200)
    datacontenttype: Text | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A valid inbound CloudEvent with its typed data."""

    source: str
    message_id: str
    type: str
    time: datetime
    subject: str
    data: MessageData
    digest: str


def content_digest(envelope: Envelope, data: Any) -> str:
    """sha-256 of what the message says (type, time, subject, data), independent of the mode.

    The bytes hashed are the JSON of those four with sorted keys and no whitespace.
    """
    canonical = orjson.dumps(
        {
            "type": envelope.type,
            "time": envelope.time.isoformat(),
            "subject": envelope.subject,
            "data": data,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).hexdigest()


def _field_errors(error: ValidationError, prefix: str) -> str:
    parts = []
    for problem in error.errors():
        path = ".".join(str(p) for p in (prefix, *problem["loc"]) if p != "")
        parts.append(f"{path}: {problem['msg']}")
    return "; ".join(parts)


def _decode_json(raw: bytes | None, what: str) -> Any:
    if raw is None:
        raise RejectionError("not_json", f"the {what} is empty: a JSON value is required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise RejectionError("not_json", f"the {what} is not valid JSON: {error}") from None


def parse(value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> InboundMessage:
    """Read one Kafka record as a CloudEvent; raise `RejectionError` saying what is wrong."""
    ce_headers = {
        k[len(BINARY_PREFIX) :]: (v or b"").decode("utf-8", errors="replace")
        for k, v in headers
        if k.startswith(BINARY_PREFIX)
    }
    if ce_headers:
        attributes: dict[str, Any] = dict(ce_headers)
        content_type = next(
            (
                (v or b"").decode("utf-8", errors="replace")
                for k, v in headers
                if k.lower() == "content-type"
            ),
            None,
        )
        # The message says who it is even when its data cannot be read: kept on the rejection.
        ident = {
            "source": attributes.get("source") or None,
            "message_id": attributes.get("id") or None,
        }
        if content_type and not content_type.startswith("application/json"):
            raise RejectionError(
                "unsupported_content_type",
                f"binary-mode data must be application/json, not {content_type!r}"
                + (
                    " (an Open edX event? `ledger run bridge openedx` reads those)"
                    if "avro" in content_type
                    else ""
                ),
                **ident,
            )
        try:
            data = _decode_json(value, "binary-mode value (the event data)")
        except RejectionError as error:
            raise RejectionError(error.reason, error.message, **ident) from None
    else:
        body = _decode_json(value, "message value")
        if not isinstance(body, dict) or "specversion" not in body:
            raise RejectionError(
                "not_cloudevent",
                "the message is neither a structured-mode CloudEvent (a JSON object with "
                "specversion, id, source, type, time, subject, data) nor binary mode "
                "(ce_ headers)",
            )
        attributes = {k: v for k, v in body.items() if k not in ("data", "data_base64")}
        if "data_base64" in body:
            raise RejectionError("schema_violation", "data_base64 is not accepted: send JSON data")
        data = body.get("data")
    try:
        envelope = Envelope.model_validate(attributes)
    except ValidationError as error:
        raise RejectionError(
            "not_cloudevent",
            f"invalid CloudEvent attributes: {_field_errors(error, '')}",
            source=attributes.get("source") if isinstance(attributes.get("source"), str) else None,
            message_id=attributes.get("id") if isinstance(attributes.get("id"), str) else None,
        ) from None
    ident = {"source": envelope.source, "message_id": envelope.id}
    model = MESSAGE_TYPES.get(envelope.type)
    if model is None:
        known = ", ".join(sorted(MESSAGE_TYPES))
        raise RejectionError(
            "unknown_type", f"unknown type {envelope.type!r}; known types: {known}", **ident
        )
    try:
        typed = model.model_validate(data)
    except ValidationError as error:
        raise RejectionError(
            "schema_violation",
            f"{envelope.type} data is invalid: {_field_errors(error, 'data')}",
            **ident,
        ) from None
    if typed.subject() != envelope.subject:
        raise RejectionError(
            "subject_mismatch",
            f"subject {envelope.subject!r} does not match the data's id {typed.subject()!r}",
            **ident,
        )
    return InboundMessage(
        source=envelope.source,
        message_id=envelope.id,
        type=envelope.type,
        time=envelope.time,
        subject=envelope.subject,
        data=typed,
        digest=content_digest(envelope, data),
    )


def structured(
    event_type: str,
    source: str,
    message_id: str,
    time: datetime,
    subject: str,
    data: dict[str, Any],
) -> bytes:
    """Encode a structured-mode CloudEvent (used by `ledger publish`, the demo and tests)."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": message_id,
            "source": source,
            "type": event_type,
            "time": time.isoformat(),
            "subject": subject,
            "datacontenttype": "application/json",
            "data": data,
        },
        separators=(",", ":"),
    ).encode()
