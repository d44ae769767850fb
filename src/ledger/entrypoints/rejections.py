"""Rejected messages as operators see them, and their retry: shared by `ledger rejections` and
the API and console, so a retry is the same act whichever face asks for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ledger.application import Ledger
from ledger.broker import OutRecord
from ledger.errors import NotFoundError
from ledger.sharding import shard_of_rejection
from ledger.store import StoredRejection


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="backslashreplace")


def as_json(r: StoredRejection) -> dict[str, Any]:
    """A rejection as JSON: bytes shown as text (what is not UTF-8 as `\\x..` escapes)."""
    return {
        "rejection_id": r.rejection_id,
        "rejected_at": r.rejected_at.isoformat(),
        "reason": r.reason,
        "message": r.message,
        "source": r.message_source,
        "id": r.message_id,
        "origin": f"{r.topic}/{r.partition}/{r.offset}",
        "key": _text(r.key),
        "value": _text(r.value),
        "headers": [[k, _text(v)] for k, v in r.headers],
        "retried_at": r.retried_at.isoformat() if r.retried_at else None,
        "retries": r.retries,
    }


def newest(
    shards: Sequence[Ledger], limit: int, reason: str | None = None
) -> list[StoredRejection]:
    """The newest rejections (of one reason) of every shard of the event store, newest first."""
    found = [
        r
        for shard in shards
        for r in shard.ledger_recorder.select_rejections(0, limit, reason, newest_first=True)
    ]
    found.sort(key=lambda r: (r.rejected_at, r.rejection_id), reverse=True)
    return found[:limit]


def keeper(shards: Sequence[Ledger], rejection_id: int) -> Ledger:
    """The shard that keeps this rejection (its id says which: `ledger.sharding`)."""
    shard = shard_of_rejection(rejection_id)
    if shard >= len(shards):
        raise NotFoundError(f"no rejection {rejection_id}: see `ledger rejections list`")
    return shards[shard]


def one(shards: Sequence[Ledger] | Ledger, rejection_id: int) -> StoredRejection:
    """The rejection with this id, or `NotFoundError` saying where to look."""
    ledger = shards if isinstance(shards, Ledger) else keeper(shards, rejection_id)
    found = ledger.ledger_recorder.get_rejection(rejection_id)
    if found is None:
        raise NotFoundError(f"no rejection {rejection_id}: see `ledger rejections list`")
    return found


def retry(
    shards: Sequence[Ledger] | Ledger,
    publish: Callable[[Sequence[OutRecord]], None],
    intake_topic: str,
    rejection_id: int,
) -> None:
    """Re-submit a rejected message, unchanged, onto the intake (once its cause is fixed),
    marked with the rejection it retries; the rejection stays, as history, with its count of
    retries. Kafka is only asked once the rejection is found."""
    ledger = shards if isinstance(shards, Ledger) else keeper(shards, rejection_id)
    rejection = one(ledger, rejection_id)
    headers = [*rejection.headers, ("ledger_retry_of", str(rejection_id).encode())]
    publish([OutRecord(intake_topic, rejection.key, rejection.value, headers)])
    ledger.ledger_recorder.mark_retried(rejection_id)
