"""The hash chain through a learner's history: the canonical form of an event and its hash.

Each learner event carries `previous_hash`, the sha-256 of the learner's previous event in this
canonical form, so the stream is a chain: editing, removing or reordering any event breaks every
link after it. The first event links to `GENESIS`.

Canonical form (what `docs/rules.md` documents for auditors): a JSON object with exactly the keys
`id` ("<aggregate id>:<version>"), `type` (the stable event name *without* its version suffix),
`recordedtime` (ISO 8601) and `data` (the event's own fields, `previous_hash` included, fields
whose value is null left out; decimals as strings, times as ISO 8601, tuples as arrays), encoded
as UTF-8 JSON with keys sorted and no whitespace (`separators=(",", ":")`, `ensure_ascii=False`).
The version suffix and null fields are left out on purpose: an upcaster that adds a field with a
null default (the only kind of change allowed to a stored event) keeps every hash valid.

`canonical` is the definition, in the standard library only, so an auditor can read it and
recompute a hash with nothing else; `hash_of_event`, which the domain calls for every event it
records, writes the same bytes with orjson (the tests compare the two on every scenario event
and on generated text).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import orjson

GENESIS = "0" * 64

#: Attributes of an eventsourcing event that are its envelope, not its data.
ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic"}
)


def plain(value: Any) -> Any:  # noqa: PLR0911 - one return per JSON type
    """A JSON-ready copy of an event field value."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def event_data(event: Any) -> dict[str, Any]:
    """The event's own fields (not its envelope) as plain JSON values (what `plain` gives,
    made by orjson in one pass: the relay and the auditors' history call this per event)."""
    fields = {k: v for k, v in vars(event).items() if k not in ENVELOPE_FIELDS}
    data: dict[str, Any] = orjson.loads(
        orjson.dumps(fields, default=_encode_default, option=_PLAIN_OPTIONS)
    )
    return data


def canonical(event_id: str, event_type: str, recorded_time: str, data: dict[str, Any]) -> bytes:
    """The canonical bytes of one event (see the module docstring)."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "recordedtime": recorded_time,
            "data": {k: v for k, v in data.items() if v is not None},
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def chain_hash(event_id: str, event_type: str, recorded_time: str, data: dict[str, Any]) -> str:
    """sha-256, hex, of the canonical form."""
    return hashlib.sha256(canonical(event_id, event_type, recorded_time, data)).hexdigest()


def _encode_default(value: Any) -> Any:
    if isinstance(value, (datetime, Decimal)):
        return plain(value)
    raise TypeError(f"cannot put {type(value).__name__} in the canonical form")


_PLAIN_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS

# orjson writes UUIDs, enums, tuples and keys as `plain` does; datetimes go to the default, as
# orjson's RFC 3339 differs from isoformat for offsets with seconds. The tests hold the two
# encodings to the same bytes with generated values.
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def hash_of_event(event: Any) -> str:
    """The chain hash of a domain event object (the same bytes as `canonical`, built faster)."""
    data = {k: v for k, v in vars(event).items() if k not in ENVELOPE_FIELDS and v is not None}
    document = {
        "id": f"{event.originator_id}:{event.originator_version}",
        "type": type(event).TOPIC,
        "recordedtime": event.timestamp.isoformat(),
        "data": data,
    }
    encoded = orjson.dumps(document, default=_encode_default, option=_ORJSON_OPTIONS)
    return hashlib.sha256(encoded).hexdigest()
