"""The events projections consume: `ledger.events` records read back into a typed value."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # at run time the type is not needed: queries import this module too
    from ledger.broker import Record


class MalformedEventError(ValueError):
    """Raised when a record on `ledger.events` lacks the headers the relay always writes.

    Records relayed before the relay wrote `ledger_position` and `ledger_relayed_through` are
    such records too: `ledger relay` from position 0 publishes them again, complete.
    """


#: An aggregate id as the relay writes it in `ce_id`: a UUID in its canonical text form. Checked
#: with a pattern rather than parsed with `uuid.UUID`, which cost as much as the rest of
#: `read_event` together (the projection worker reads every record through it).
_AGGREGATE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(slots=True)
class LedgerEvent:
    """One published domain event: identity, type, subject, business time and plain data.

    Only what read models use: the recorded time (`ce_recordedtime`) is left unread, as
    parsing it for every record cost time and no read model shows it.

    Not frozen: a frozen dataclass sets every field through `object.__setattr__`, a cost paid
    per record on the projections' hot path. Nothing changes an event after it is read.
    """

    #: The aggregate's UUID as text (as in `ce_id`): hashed and compared in every batch, where
    #: `uuid.UUID`'s Python-level hashing showed up as a cost.
    aggregate_id: str
    version: int
    type: str
    subject: str
    time: datetime
    data: dict[str, Any]
    #: Its id in the event store's notification log, and how far the relay had published when
    #: it sent it (`ledger_position`, `ledger_relayed_through`): what dedupe goes by
    #: (`projections.positions`). Both 0 for an event read from the event store rather than
    #: the topic (an auditor's replay), which nothing dedupes.
    position: int = 0
    relayed_through: int = 0
    #: The type without its version suffix, e.g. `ledger.learner.enrolled`: what read models
    #: key their handlers by, looked up several times per event.
    kind: str = field(init=False)

    def __post_init__(self) -> None:
        kind = _KINDS.get(self.type)
        if kind is None:
            kind = _KINDS[self.type] = self.type.rsplit(".v", 1)[0]
        self.kind = kind


#: Kinds by type, worked out once per type rather than once per event.
_KINDS: dict[str, str] = {}


def _aggregate_id(text: str) -> str:
    if not _AGGREGATE_ID.fullmatch(text):
        raise ValueError(f"ce_id names {text!r}, not an aggregate id (a lowercase UUID)")
    return text


def _stamp(headers: dict[bytes, bytes | None], name: bytes) -> int:
    value = headers.get(name)
    if not value:
        raise ValueError(f"no {name.decode()} header (the relay writes one on every record)")
    return int(value)


def _by_name(headers: list[tuple[str, bytes | None]]) -> dict[bytes, bytes | None]:
    by_name = getattr(headers, "by_name", None)  # `kafka_records.EncodedHeaders`
    if by_name is not None:
        found: dict[bytes, bytes | None] = by_name()  # the worker's: one pass over the block
        return found
    return {k.encode(): v for k, v in headers}


def read_event(record: Record) -> LedgerEvent:
    """Parse one record written by the relay; raise `MalformedEventError` otherwise."""
    try:
        headers = _by_name(record.headers)
        aggregate, version = (headers.get(b"ce_id") or b"").decode().rsplit(":", 1)
        return LedgerEvent(
            aggregate_id=_aggregate_id(aggregate),
            version=int(version),
            type=(headers.get(b"ce_type") or b"").decode(),
            subject=(headers.get(b"ce_subject") or b"").decode(),
            time=datetime.fromisoformat((headers.get(b"ce_time") or b"").decode()),
            data=orjson.loads(record.value or b"{}"),
            position=_stamp(headers, b"ledger_position"),
            relayed_through=_stamp(headers, b"ledger_relayed_through"),
        )
    except (ValueError, TypeError) as error:
        raise MalformedEventError(
            f"{record.topic}/{record.partition}/{record.offset} is not a ledger event: {error}"
        ) from error
