"""Stored domain events as the CloudEvents other services read on `ledger.events` (DESIGN §4).

The event store's own JSON wraps Decimal, UUID and datetime in `{"_type_", "_data_"}` envelopes
meant for the library, not for consumers; here each event becomes plain JSON `data` plus binary-
mode `ce_` headers: a deterministic id (aggregate id and version, so a republished event is
recognisably the same), the stable type name with its version, the learner (or specialization)
as subject, the business time, the recorded time, and the aggregate version as sequence.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from ledger.broker import OutRecord

SOURCE = "urn:ledger"
_ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic"}
)


def _plain(value: Any) -> Any:  # noqa: PLR0911 - one return per JSON type
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def event_type(event: Any) -> str:
    """The wire name: the event's stable topic plus its class version (`...enrolled.v1`)."""
    return f"{type(event).TOPIC}.v{getattr(type(event), 'class_version', 1)}"


def event_data(event: Any) -> dict[str, Any]:
    """The event's own fields as plain JSON values."""
    return {k: _plain(v) for k, v in vars(event).items() if k not in _ENVELOPE_FIELDS}


def to_record(topic: str, event: Any, subject: str) -> OutRecord:
    """The Kafka record for one stored event; key = aggregate id, so order holds per learner."""
    aggregate_id = str(event.originator_id)
    version = int(event.originator_version)
    data = event_data(event)
    business_time = data.get("at") or _plain(event.timestamp)
    headers: list[tuple[str, bytes | None]] = [
        ("ce_specversion", b"1.0"),
        ("ce_id", f"{aggregate_id}:{version}".encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_type", event_type(event).encode()),
        ("ce_subject", subject.encode()),
        ("ce_time", str(business_time).encode()),
        ("ce_recordedtime", _plain(event.timestamp).encode()),
        ("ce_sequence", str(version).encode()),
        ("content-type", b"application/json"),
    ]
    value = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return OutRecord(topic=topic, key=aggregate_id.encode(), value=value, headers=headers)


def subject_of(first_event: Any) -> str:
    """The natural id an aggregate's first event names (learner id or specialization id)."""
    for name in ("learner_id", "specialization_id"):
        value = getattr(first_event, name, None)
        if isinstance(value, str):
            return value
    return str(first_event.originator_id)
