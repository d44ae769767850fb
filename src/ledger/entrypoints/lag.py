"""How far behind each stage of the pipeline is: intake, relay, projections.

Each stage's position is read from where the stage itself commits it (PostgreSQL), and compared
with the end of what it consumes (a Kafka topic's end offsets, or the newest notification id),
so the answer is exact whatever Kafka's consumer-group offsets say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from ledger.application import Ledger
from ledger.broker import end_offsets
from ledger.relay import EVENTS_STREAM
from ledger.settings import Services, Settings
from ledger.sharding import slowest
from projections.status import PartitionLag, projection_lag


@dataclass(frozen=True)
class StageLag:
    """Done so far and the end to reach, for one stage."""

    stage: str
    done: int
    end: int

    @property
    def behind(self) -> int:
        return max(0, self.end - self.done)


def pipeline_lag(
    settings: Settings, services: Services, ledger: Ledger, more_shards: Sequence[Ledger] = ()
) -> list[StageLag]:
    """Each stage's lag; with shards (`docs/sharding.md`), the intake has done a partition as
    far as the shard furthest behind on it, and each shard's relay is a stage of its own."""
    bootstrap = services.kafka_bootstrap
    shards = [ledger, *more_shards]
    intake_end = end_offsets(bootstrap, settings.intake_topic)
    done_in = [shard.ledger_recorder.intake_positions(settings.intake_topic) for shard in shards]
    stages = [
        StageLag(
            "intake",
            sum(min(done, intake_end[p]) for p, done in slowest(done_in, intake_end).items()),
            sum(intake_end.values()),
        )
    ]
    for n, shard in enumerate(shards):
        recorder = shard.ledger_recorder
        stages.append(
            StageLag(
                "relay" if n == 0 else f"relay {n + 1}",
                recorder.relay_position(EVENTS_STREAM),
                recorder.max_notification_id() or 0,
            )
        )
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        by_model: dict[str, list[PartitionLag]] = {}
        for lag in projection_lag(conn, bootstrap, settings.events_topic):
            by_model.setdefault(lag.projection, []).append(lag)
    stages.extend(
        StageLag(f"projection {name}", sum(p.done for p in lags), sum(p.end for p in lags))
        for name, lags in by_model.items()
    )
    return stages
