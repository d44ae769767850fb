"""The events projections consume: `ledger.events` records read back into a typed value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from uuid import UUID

import orjson

from ledger.broker import Record


class MalformedEventError(ValueError):
    """Raised when a record on `ledger.events` lacks the headers the relay always writes."""


@dataclass(frozen=True)
class LedgerEvent:
    """One published domain event: identity, type, subject, times and plain data."""

    #: The aggregate's UUID as text (as in `ce_id`): hashed and compared in every batch, where
    #: `uuid.UUID`'s Python-level hashing showed up as a cost.
    aggregate_id: str
    version: int
    type: str
    subject: str
    time: datetime
    recorded_time: datetime
    data: dict[str, Any]

    @cached_property
    def kind(self) -> str:
        """The type without its version suffix, e.g. `ledger.learner.enrolled`."""
        return self.type.rsplit(".v", 1)[0]


def read_event(record: Record) -> LedgerEvent:
    """Parse one record written by the relay; raise `MalformedEventError` otherwise."""
    try:
        headers = {k: v for k, v in record.headers if v is not None}
        aggregate, version = headers.get("ce_id", b"").decode().rsplit(":", 1)
        return LedgerEvent(
            aggregate_id=str(UUID(aggregate)),
            version=int(version),
            type=headers.get("ce_type", b"").decode(),
            subject=headers.get("ce_subject", b"").decode(),
            time=datetime.fromisoformat(headers.get("ce_time", b"").decode()),
            recorded_time=datetime.fromisoformat(headers.get("ce_recordedtime", b"").decode()),
            data=orjson.loads(record.value or b"{}"),
        )
    except (ValueError, TypeError) as error:
        raise MalformedEventError(
            f"{record.topic}/{record.partition}/{record.offset} is not a ledger event: {error}"
        ) from error
