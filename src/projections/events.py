"""The events projections consume: `ledger.events` records read back into a typed value."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.broker import Record


class MalformedEventError(ValueError):
    """Raised when a record on `ledger.events` lacks the headers the relay always writes."""


@dataclass(frozen=True)
class LedgerEvent:
    """One published domain event: identity, type, subject, times and plain data."""

    aggregate_id: UUID
    version: int
    type: str
    subject: str
    time: datetime
    recorded_time: datetime
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        """The type without its version suffix, e.g. `ledger.learner.enrolled`."""
        return self.type.rsplit(".v", 1)[0]


def read_event(record: Record) -> LedgerEvent:
    """Parse one record written by the relay; raise `MalformedEventError` otherwise."""
    try:
        event_id = record.header("ce_id") or ""
        aggregate, version = event_id.rsplit(":", 1)
        data = json.loads(record.value or b"{}")
        return LedgerEvent(
            aggregate_id=UUID(aggregate),
            version=int(version),
            type=record.header("ce_type") or "",
            subject=record.header("ce_subject") or "",
            time=datetime.fromisoformat(record.header("ce_time") or ""),
            recorded_time=datetime.fromisoformat(record.header("ce_recordedtime") or ""),
            data=data,
        )
    except (ValueError, TypeError) as error:
        raise MalformedEventError(
            f"{record.topic}/{record.partition}/{record.offset} is not a ledger event: {error}"
        ) from error
