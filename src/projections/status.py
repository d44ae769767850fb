"""How far behind each read model is, per partition of `ledger.events`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from ledger.broker import end_offsets
from projections import generations, positions
from projections.catalog import READ_MODELS


@dataclass(frozen=True)
class PartitionLag:
    projection: str
    schema: str
    partition: int
    done: int
    end: int

    @property
    def behind(self) -> int:
        return max(0, self.end - self.done)


def projection_lag(conn: Connection[Any], bootstrap: str, topic: str) -> list[PartitionLag]:
    """Each live read model's position against the end of each partition."""
    ends = end_offsets(bootstrap, topic)
    lags: list[PartitionLag] = []
    with conn.cursor() as cur:
        for model in READ_MODELS:
            schema = generations.live_schema(cur, model.name)
            done = positions.load_offsets(cur, schema, topic)
            lags.extend(
                PartitionLag(model.name, schema, p, min(done.get(p, 0), end), end)
                for p, end in sorted(ends.items())
            )
    return lags
