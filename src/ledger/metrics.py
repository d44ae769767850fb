"""`GET /metrics`: the pipeline's lag and throughput in Prometheus' text exposition format.

Written by hand rather than with a client library because every figure is read when scraped,
from where each stage commits its own position (PostgreSQL) and from the ends of the topics
(Kafka), as `ledger.lag` does: nothing is counted in the API process, so the figures are the
same whichever process is scraped and survive restarts. The counters are positions, so they only
reset when a read model is rebuilt from the start (Prometheus treats that as a counter reset).

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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection
from psycopg.sql import SQL, Identifier

from ledger import heartbeats
from ledger.application import Ledger
from ledger.broker import end_offsets
from ledger.relay import EVENTS_STREAM, REJECTIONS_STREAM
from ledger.settings import Settings
from ledger.stack import services
from projections import generations
from projections.catalog import READ_MODELS
from projections.skipped import count as skipped_count
from projections.status import projection_lag

#: The content type of text exposition format 0.0.4, as Prometheus' own clients send it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Family:
    """One metric: its HELP and TYPE lines and its samples."""

    name: str
    kind: str
    help: str
    samples: list[tuple[Mapping[str, object], float]] = field(default_factory=list)

    def add(self, value: float, **labels: object) -> None:
        self.samples.append((labels, value))

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in self.samples:
            pairs = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
            number = f"{value:.3f}" if isinstance(value, float) else str(value)
            yield f"{self.name}{{{pairs}}} {number}" if pairs else f"{self.name} {number}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(settings: Settings, ledger: Ledger, conn: Connection[Any]) -> str:
    """Every metric, read now; `conn` reaches the read models and the rejections table."""
    bootstrap = services.kafka_bootstrap(settings)
    recorder = ledger.ledger_recorder
    lag = Family(
        "ledger_consumer_lag",
        "gauge",
        "Messages a stage has still to handle: intake and projections per partition of the "
        "topic they consume, the relay per stream of the event store.",
    )
    intake = Family(
        "ledger_intake_messages_total",
        "counter",
        "Messages of ledger.intake the intake has handled, accepted or rejected "
        "(its committed positions).",
    )
    stored = Family(
        "ledger_events_stored_total",
        "counter",
        "Events in the event store (its newest notification id).",
    )
    applied = Family(
        "ledger_projection_events_applied_total",
        "counter",
        "Records of ledger.events each read model has consumed (its committed positions).",
    )
    rejections = Family(
        "ledger_rejections_total",
        "counter",
        "Messages refused at intake, kept with their reason code.",
    )

    intake_done = recorder.intake_positions(settings.intake_topic)
    for partition, end in sorted(end_offsets(bootstrap, settings.intake_topic).items()):
        lag.add(max(0, end - intake_done.get(partition, 0)), stage="intake", partition=partition)
    intake.add(sum(intake_done.values()))

    newest = recorder.max_notification_id() or 0
    stored.add(newest)
    for stream, end in ((EVENTS_STREAM, newest), (REJECTIONS_STREAM, recorder.max_rejection_id())):
        lag.add(max(0, end - recorder.relay_position(stream)), stage="relay", stream=stream)

    done_per_model: dict[str, int] = {}
    for partition_lag in projection_lag(conn, bootstrap, settings.events_topic):
        lag.add(
            partition_lag.behind,
            stage="projections",
            read_model=partition_lag.projection,
            partition=partition_lag.partition,
        )
        done = done_per_model.get(partition_lag.projection, 0) + partition_lag.done
        done_per_model[partition_lag.projection] = done
    for model, done in done_per_model.items():
        applied.add(done, read_model=model)

    # The recorder names its own tables; asking it keeps this query on the table it writes.
    query = SQL("SELECT reason, count(*) FROM {s}.{t} GROUP BY reason ORDER BY reason").format(
        s=Identifier(recorder.datastore.schema), t=recorder.rejections_table
    )
    for reason, count in conn.execute(query).fetchall():
        rejections.add(int(count), reason=reason)

    skipped = Family(
        "ledger_projection_events_skipped_total",
        "counter",
        "Events a read model could not apply and skipped, kept with the reason.",
    )
    with conn.cursor() as cur:
        for read_model in READ_MODELS:
            generation = generations.live(cur, read_model.name)
            if generation is not None:
                skipped.add(skipped_count(cur, generation.schema), read_model=read_model.name)

    families = (lag, intake, stored, applied, rejections, skipped, *_worker_families(conn))
    return "".join(f"{line}\n" for family in families for line in family.lines())


def _worker_families(conn: Connection[Any]) -> list[Family]:
    """The workers' own account of themselves: their heartbeats."""
    progress = Family(
        "ledger_worker_last_progress_timestamp_seconds",
        "gauge",
        "When the worker last made progress, or last saw nothing to do (seconds since 1970).",
    )
    beat = Family(
        "ledger_worker_heartbeat_timestamp_seconds",
        "gauge",
        "When the worker last wrote its heartbeat (seconds since 1970).",
    )
    lag = Family("ledger_worker_lag", "gauge", "Records the worker sees waiting for it.")
    state = Family(
        "ledger_worker_state", "gauge", "1 for the worker's state now: running, outage, ..."
    )
    rejoins = Family(
        "ledger_worker_rejoins_total",
        "counter",
        "Times the worker replaced its consumer after a stall (no progress with lag).",
    )
    failures = Family(
        "ledger_worker_failures_total", "counter", "Unexpected errors the worker restarted after."
    )
    outages = Family(
        "ledger_worker_outages_total", "counter", "Kafka or PostgreSQL outages the worker rode out."
    )
    for h in heartbeats.read(conn):
        labels = {"worker": h.worker, "instance": h.instance}
        progress.add(h.last_progress_at.timestamp(), **labels)
        beat.add(h.beat_at.timestamp(), **labels)
        if h.lag is not None:
            lag.add(h.lag, **labels)
        state.add(1, **labels, state=h.state)
        rejoins.add(h.rejoins, **labels)
        failures.add(h.failures, **labels)
        outages.add(h.outages, **labels)
    return [progress, beat, lag, state, rejoins, failures, outages]
