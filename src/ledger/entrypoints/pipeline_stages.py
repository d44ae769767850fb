"""Where each stage of a pipeline stands, read from where each commits its position: the
intake's positions, the relay's, the read models' offsets. The fault matrix, the fuzzer and the
benchmarks wait on these to know a pipeline has caught up."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from ledger.broker import end_offsets
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import Scratch
from ledger.errors import LedgerError
from ledger.sharding import slowest
from projections.status import projection_lag


@dataclass
class Stages:
    """Where each stage stands, read from where each commits its position."""

    intake_done: int
    intake_end: int
    relay_done: int
    stored: int
    rejections_relayed: int
    rejections: int
    projected: int
    published: int
    projections_behind: int

    @property
    def caught_up(self) -> bool:
        return (
            self.intake_done >= self.intake_end
            and self.relay_done >= self.stored
            and self.rejections_relayed >= self.rejections
            and self.projections_behind == 0
            and self.published > 0
        )


def read_stages(own: Scratch) -> Stages | None:
    """The stages now, or None while a service does not answer (a fault is on).

    With shards (`docs/sharding.md`) each keeps its own positions for every partition: the
    intake has done a partition only as far as the shard furthest behind on it, and the
    relays' figures are every shard's summed."""
    settings, kafka = own.settings, own.services.kafka_bootstrap
    positions: list[dict[int, int]] = []
    relayed = [0, 0, 0, 0]  # events relayed, stored; rejections relayed, stored
    try:
        ends = end_offsets(kafka, settings.intake_topic)
        for shard in range(len(own.services.shard_urls)):
            with bootstrap.connect(own.services, connect_timeout=3, shard=shard) as conn:
                done = dict(
                    conn.execute(
                        "SELECT partition, next_offset FROM ledger_intake_positions"
                        " WHERE topic = %s",
                        (settings.intake_topic,),
                    ).fetchall()
                )
                row = conn.execute(
                    "SELECT"
                    " (SELECT coalesce(max(position), 0) FROM ledger_relay_positions"
                    "  WHERE stream = 'events'),"
                    " (SELECT coalesce(max(notification_id), 0) FROM ledger_events),"
                    " (SELECT coalesce(max(position), 0) FROM ledger_relay_positions"
                    "  WHERE stream = 'rejections'),"
                    " (SELECT coalesce(max(rejection_id), 0) FROM ledger_rejections)"
                ).fetchone()
            assert row is not None  # noqa: S101 - a SELECT of scalars always returns a row
            positions.append(done)
            relayed = [a + int(b) for a, b in zip(relayed, row, strict=True)]
        with bootstrap.connect(own.services, connect_timeout=3) as conn:
            lags = projection_lag(conn, kafka, settings.events_topic)
    except (LedgerError, psycopg.Error, OSError):
        return None
    return Stages(
        sum(slowest(positions, ends).values()),
        sum(ends.values()),
        relayed[0],
        relayed[1],
        relayed[2],
        relayed[3],
        sum(lag.done for lag in lags),
        sum(lag.end for lag in lags),
        sum(lag.behind for lag in lags),
    )


def wait_settled(
    own: Scratch,
    deadline: float,
    progress: Callable[[Stages], None] | None = None,
    every_s: float = 10.0,
) -> bool:
    """Wait until every stage has caught up; `progress` hears where they stand every
    `every_s` seconds (a fuzz run of 100,000 messages takes many minutes to drain)."""
    next_report = time.monotonic() + every_s
    while time.monotonic() < deadline:
        stages = read_stages(own)
        if stages is not None and stages.caught_up:
            return True
        if progress is not None and stages is not None and time.monotonic() >= next_report:
            progress(stages)
            next_report = time.monotonic() + every_s
        time.sleep(0.2)
    return False
