"""`GET /metrics`: the pipeline's lag and throughput, in Prometheus' text exposition format.

Written with `prometheus_client`, through a collector of its own (`LedgerCollector`) that reads
every figure when scraped, from where each stage commits its own position (PostgreSQL) and from
the ends of the topics (Kafka), as `ledger.entrypoints.lag` does: nothing is counted in the API
process, so the figures are the same whichever process is scraped and survive restarts. The
counters are positions, so they only reset when a read model is rebuilt from the start
(Prometheus treats that as a counter reset). The client's own process and platform metrics
(CPU, memory, open files, Python version) come beside them.

- `ledger_consumer_lag` (gauge): what a stage has still to handle: per partition of
  `ledger.intake` for the intake, per read model and partition of `ledger.events` for the
  projections, per stream (notifications and rejections not yet on Kafka) for the relay.
- `ledger_intake_messages_total`, `ledger_events_stored_total`,
  `ledger_projection_events_applied_total`: how far each stage has come.
- `ledger_rejections_total`: messages refused at intake, per reason code.
- `ledger_projection_events_skipped_total`: events a read model could not apply and skipped
  (`projections.skipped`), per read model.
- Per worker instance (host:pid:worker), from its heartbeats (`ledger.heartbeats`):
  `ledger_worker_last_progress_timestamp_seconds` (when it last made progress or had nothing
  to do: alert when it falls behind the clock), `ledger_worker_heartbeat_timestamp_seconds`,
  `ledger_worker_lag`, `ledger_worker_state` (1 for its state now), and the counters
  `ledger_worker_rejoins_total` (stalls it recovered from), `ledger_worker_failures_total`,
  `ledger_worker_outages_total`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from prometheus_client import (
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from psycopg import Connection

from ledger import heartbeats
from ledger.application import Ledger
from ledger.broker import end_offsets
from ledger.relay import EVENTS_STREAM, REJECTIONS_STREAM
from ledger.settings import Services, Settings
from ledger.sharding import slowest
from projections import generations
from projections.catalog import READ_MODELS
from projections.skipped import count as skipped_count
from projections.status import projection_lag

#: Text exposition format 0.0.4, as Prometheus' scrapers have always read it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _metric(name: str, kind: str, documentation: str) -> Metric:
    # A counter's name is given without `_total` (the family), its samples with it.
    return Metric(name.removesuffix("_total") if kind == "counter" else name, documentation, kind)


def _sample(metric: Metric, value: float, **labels: object) -> None:
    suffix = "_total" if metric.type == "counter" else ""
    metric.add_sample(metric.name + suffix, {k: str(v) for k, v in labels.items()}, value)


class LedgerCollector(Collector):
    """Every ledger figure, read at scrape time (see the module docstring).

    `connection` lends a PostgreSQL connection for one scrape; `shards` (a `Ledger` on each
    shard of the event store) and `services` are asked for on each scrape too, so the API can
    start before the services are up. With shards, the relays' and the store's figures carry a
    `shard` label (1, 2, ...), and a partition of the intake is as far as its slowest shard.
    """

    def __init__(
        self,
        settings: Settings,
        services: Callable[[], Services],
        shards: Callable[[], Sequence[Ledger]],
        connection: Callable[[], AbstractContextManager[Connection[Any]]],
    ) -> None:
        self.settings = settings
        self.services = services
        self.shards = shards
        self.connection = connection

    def collect(self) -> Iterator[Metric]:
        with self.connection() as conn:
            yield from self._pipeline(conn)
            yield from _workers(conn)

    def _pipeline(self, conn: Connection[Any]) -> Iterator[Metric]:
        settings = self.settings
        bootstrap = self.services().kafka_bootstrap
        recorders = [shard.ledger_recorder for shard in self.shards()]
        lag = _metric(
            "ledger_consumer_lag",
            "gauge",
            "Messages a stage has still to handle: intake and projections per partition of the "
            "topic they consume, the relay per stream of the event store.",
        )
        intake = _metric(
            "ledger_intake_messages_total",
            "counter",
            "Messages of ledger.intake the intake has handled, accepted or rejected "
            "(its committed positions).",
        )
        stored = _metric(
            "ledger_events_stored_total",
            "counter",
            "Events in the event store (its newest notification id).",
        )
        applied = _metric(
            "ledger_projection_events_applied_total",
            "counter",
            "Records of ledger.events each read model has consumed (its committed positions).",
        )
        rejections = _metric(
            "ledger_rejections_total",
            "counter",
            "Messages refused at intake, kept with their reason code.",
        )
        skipped = _metric(
            "ledger_projection_events_skipped_total",
            "counter",
            "Events a read model could not apply and skipped, kept with the reason.",
        )

        ends = end_offsets(bootstrap, settings.intake_topic)
        applied_to = slowest([r.intake_positions(settings.intake_topic) for r in recorders], ends)
        for partition, end in sorted(ends.items()):
            behind = max(0, end - applied_to[partition])
            _sample(lag, behind, stage="intake", partition=partition)
        _sample(intake, sum(applied_to.values()))

        for n, recorder in enumerate(recorders, 1):
            which = {"shard": n} if len(recorders) > 1 else {}
            newest = recorder.max_notification_id() or 0
            _sample(stored, newest, **which)
            for stream, end in (
                (EVENTS_STREAM, newest),
                (REJECTIONS_STREAM, recorder.max_rejection_id()),
            ):
                behind = max(0, end - recorder.relay_position(stream))
                _sample(lag, behind, stage="relay", stream=stream, **which)

        done_per_model: dict[str, int] = {}
        for partition_lag in projection_lag(conn, bootstrap, settings.events_topic):
            _sample(
                lag,
                partition_lag.behind,
                stage="projections",
                read_model=partition_lag.projection,
                partition=partition_lag.partition,
            )
            done = done_per_model.get(partition_lag.projection, 0) + partition_lag.done
            done_per_model[partition_lag.projection] = done
        for model, done in done_per_model.items():
            _sample(applied, done, read_model=model)

        by_reason: dict[str, int] = {}
        for recorder in recorders:
            for reason, count in recorder.rejections_by_reason().items():
                by_reason[reason] = by_reason.get(reason, 0) + count
        for reason, count in sorted(by_reason.items()):
            _sample(rejections, count, reason=reason)

        with conn.cursor() as cur:
            for read_model in READ_MODELS:
                generation = generations.live(cur, read_model.name)
                if generation is not None:
                    count = skipped_count(cur, generation.schema)
                    _sample(skipped, count, read_model=read_model.name)
        yield from (lag, intake, stored, applied, rejections, skipped)


def _workers(conn: Connection[Any]) -> Iterator[Metric]:
    """The workers' own account of themselves: their heartbeats."""
    progress = _metric(
        "ledger_worker_last_progress_timestamp_seconds",
        "gauge",
        "When the worker last made progress, or last saw nothing to do (seconds since 1970).",
    )
    beat = _metric(
        "ledger_worker_heartbeat_timestamp_seconds",
        "gauge",
        "When the worker last wrote its heartbeat (seconds since 1970).",
    )
    lag = _metric("ledger_worker_lag", "gauge", "Records the worker sees waiting for it.")
    state = _metric(
        "ledger_worker_state", "gauge", "1 for the worker's state now: running, outage, ..."
    )
    rejoins = _metric(
        "ledger_worker_rejoins_total",
        "counter",
        "Times the worker replaced its consumer after a stall (no progress with lag).",
    )
    failures = _metric(
        "ledger_worker_failures_total", "counter", "Unexpected errors the worker restarted after."
    )
    outages = _metric(
        "ledger_worker_outages_total", "counter", "Kafka or PostgreSQL outages the worker rode out."
    )
    for h in heartbeats.read(conn):
        labels = {"worker": h.worker, "instance": h.instance}
        _sample(progress, h.last_progress_at.timestamp(), **labels)
        _sample(beat, h.beat_at.timestamp(), **labels)
        if h.lag is not None:
            _sample(lag, h.lag, **labels)
        _sample(state, 1, **labels, state=h.state)
        _sample(rejoins, h.rejoins, **labels)
        _sample(failures, h.failures, **labels)
        _sample(outages, h.outages, **labels)
    yield from (progress, beat, lag, state, rejoins, failures, outages)


def registry(collector: LedgerCollector) -> CollectorRegistry:
    """What `/metrics` serves: the ledger's figures, and the API process's own."""
    found = CollectorRegistry(auto_describe=False)
    found.register(collector)
    found.register(PROCESS_COLLECTOR)
    found.register(PLATFORM_COLLECTOR)
    return found


def exposition(registry: CollectorRegistry) -> str:
    """Every metric, read now, as text."""
    return generate_latest(registry).decode()
