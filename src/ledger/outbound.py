"""Stored domain events as the CloudEvents other services read on `ledger.events` (DESIGN §4).

The event store's own JSON wraps Decimal, UUID and datetime in `{"_type_", "_data_"}` envelopes
meant for the library, not for consumers; here each event becomes plain JSON `data` plus binary-
mode `ce_` headers: a deterministic id (aggregate id and version, so a republished event is
recognisably the same), the stable type name with its version, the learner (or specialization)
as subject, the business time, the recorded time, and the aggregate version as sequence.
The relay adds two headers of its own: `ledger_position`, the event's id in the event store's
notification log, and `ledger_relayed_through`, the position up to which every event was already
published and acknowledged when this one was sent. Together they let projections tell a
republished copy from a new event with one small record per partition
(`projections.positions`) instead of a stored version per aggregate.

The `data` is exactly the hash chain's canonical data (`ledger.domain.chain`), so an auditor can
recompute every learner event's hash from what was published. Each event class has a pydantic
model built from its own annotations (`OUTBOUND_MODELS`): the relay validates every event
against it before publishing, and `schemas/` is generated from it.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from ledger.broker import Headers, OutRecord
from ledger.domain import Learner, Specialization
from ledger.domain.chain import ENVELOPE_FIELDS, event_data, plain

SOURCE = "urn:ledger"


def event_type(event_class: type[Any]) -> str:
    """The wire name: the event's stable topic plus its class version (`...enrolled.v1`)."""
    return f"{event_class.TOPIC}.v{getattr(event_class, 'class_version', 1)}"


def _event_classes() -> list[type[Any]]:
    classes = []
    for aggregate in (Specialization, Learner):
        for name, value in vars(aggregate).items():
            if (
                isinstance(value, type)
                and hasattr(value, "TOPIC")
                and name not in ("Event", "Created")
            ):
                classes.append(value)
    return classes


class OutboundData(BaseModel):
    """Base of the outbound `data` models: immutable, nothing beyond the event's fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _model_for(event_class: type[Any]) -> type[OutboundData]:
    hints = typing.get_type_hints(event_class)
    fields: dict[str, Any] = {
        name: (annotation, ...)
        for name, annotation in hints.items()
        if name not in ENVELOPE_FIELDS
        and not name.startswith("_")
        and name not in ("TOPIC", "class_version")
        and typing.get_origin(annotation) is not typing.ClassVar
    }
    model: type[OutboundData] = create_model(
        event_class.__qualname__.replace(".", ""),
        __base__=OutboundData,
        __doc__=(event_class.__doc__ or "").strip(),
        **fields,
    )
    return model


#: The data model of every outbound event type, by `ce_type`.
OUTBOUND_MODELS: dict[str, type[OutboundData]] = {
    event_type(cls): _model_for(cls) for cls in _event_classes()
}


@dataclass(frozen=True)
class Relayed:
    """Where the relay found an event: its notification id, and the relay's stored position
    when it sent it (every event up to there is on the topic already)."""

    position: int
    through: int

    def headers(self) -> Headers:
        return [
            ("ledger_position", str(self.position).encode()),
            ("ledger_relayed_through", str(self.through).encode()),
        ]


def to_record(topic: str, event: Any, subject: str, relayed: Relayed | None = None) -> OutRecord:
    """The Kafka record for one stored event; key = aggregate id, so order holds per learner.

    The relay gives `relayed`; an export, or an audit comparing contents, does without.
    """
    aggregate_id = str(event.originator_id)
    version = int(event.originator_version)
    ce_type = event_type(type(event))
    data = event_data(event)
    OUTBOUND_MODELS[ce_type].model_validate(data)  # the contract, checked before it leaves
    business_time = data.get("at") or plain(event.timestamp)
    headers: list[tuple[str, bytes | None]] = [
        ("ce_specversion", b"1.0"),
        ("ce_id", f"{aggregate_id}:{version}".encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_subject", subject.encode()),
        ("ce_time", str(business_time).encode()),
        ("ce_recordedtime", plain(event.timestamp).encode()),
        ("ce_sequence", str(version).encode()),
        ("content-type", b"application/json"),
    ]
    if relayed is not None:
        headers += relayed.headers()
    return OutRecord(
        topic=topic, key=aggregate_id.encode(), value=record_value(data), headers=headers
    )


def record_value(data: dict[str, Any]) -> bytes:
    """A record's value: the event's canonical data as compact JSON (an audit compares these
    bytes with what the topic holds, without building the whole record)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def relayed_in_order(records: Sequence[OutRecord], page: int) -> list[OutRecord]:
    """`records` stamped as the relay would have, had the event store held them in this order
    (positions 1, 2, 3 ..., published `page` at a time): for benchmarks and tests that publish
    events without running the relay."""
    stamped = []
    for index, record in enumerate(records):
        headers = [(k, v) for k, v in record.headers if not k.startswith("ledger_")]
        headers += Relayed(index + 1, index - index % page).headers()
        stamped.append(OutRecord(record.topic, record.key, record.value, headers))
    return stamped


def subject_of(first_event: Any) -> str:
    """The natural id an aggregate's first event names (learner id or specialization id)."""
    for name in ("learner_id", "specialization_id"):
        value = getattr(first_event, name, None)
        if isinstance(value, str):
            return value
    return str(first_event.originator_id)
