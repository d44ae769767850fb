"""The capacity model: how many shards, partitions, brokers and projection processes a platform
of a given size needs, and how much storage a year, from rates measured on this machine.

Everything here is arithmetic over two kinds of input, kept apart so a reader can tell them:
the platform's traffic (learners, inbound messages per learner per year, the peak hour's factor
over an average hour: assumptions, given as options), and what one part of the ledger does here
(commands/s of one shard's intake, events per command, events/s of one projection process, bytes
per stored event, bytes per record on Kafka: measured by `ledger bench shards` and
`ledger bench projections`, read from their JSON). `docs/capacity.md` walks through it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

SECONDS_A_YEAR = 365 * 24 * 3600
#: Kafka keeps each record on this many brokers (`ledger stack up --brokers 3`).
REPLICATION = 3
#: The share of a part's measured rate a plan may count on: room for the peak of the peak,
#: a rebalance, a catch-up after an outage.
UTILISATION = 0.5
#: Partitions per shard: more than one, so the intake of a shard can use several processes,
#: and a power of two, so doubling the shards never splits a partition's learners.
PARTITIONS_PER_SHARD = 4


@dataclass(frozen=True)
class Traffic:
    """The platform's size and traffic (assumptions)."""

    learners: int = 150_000_000
    #: Inbound messages a learner causes in a year: enrolments, payments, grades, identity.
    messages_per_learner_year: float = 20.0
    #: The busiest hour's traffic over an average hour's (term starts, deadlines).
    peak_factor: float = 6.0
    #: Years of events the shards must hold (the ledger deletes nothing).
    years: int = 5
    #: What one PostgreSQL server may hold (disk, and backups and restores that finish).
    shard_storage_bytes: float = 4e12


@dataclass(frozen=True)
class Measured:
    """What one part does on this machine (measured; see the module docstring)."""

    #: Commands/s one shard's intake takes (its server to itself).
    shard_commands_per_second: float
    #: Events stored per inbound message (accepted messages make 1 or more, rejections 0).
    events_per_command: float
    #: Events/s one projection process applies to every read model.
    projection_events_per_second: float
    #: Bytes on disk per stored event (table and indexes), and per message kept by the intake.
    store_bytes_per_event: float
    #: Bytes per record on Kafka: an inbound message, and an event on `ledger.events`.
    kafka_bytes_per_message: float
    kafka_bytes_per_event: float
    #: Bytes/s one broker takes in (produce) while serving its consumers, on its own disk.
    broker_bytes_per_second: float


@dataclass(frozen=True)
class Plan:
    """What the platform needs (see `plan`)."""

    messages_per_year: float
    events_per_year: float
    peak_commands_per_second: float
    peak_events_per_second: float
    #: Shards the peak needs, shards the stored years need, and the plan's (the larger,
    #: rounded up to a power of two: shards are added by doubling, `docs/sharding.md`).
    shards_for_peak: int
    shards_for_storage: int
    shards: int
    partitions: int
    projection_processes: int
    brokers: int
    postgres_bytes_per_year: float
    kafka_bytes_per_year: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(traffic: Traffic, measured: Measured, utilisation: float = UTILISATION) -> Plan:
    """The plan for `traffic` given `measured` rates, each part run at `utilisation` of what
    it was measured to do."""
    messages = traffic.learners * traffic.messages_per_learner_year
    events = messages * measured.events_per_command
    peak_commands = messages / SECONDS_A_YEAR * traffic.peak_factor
    peak_events = peak_commands * measured.events_per_command
    for_peak = max(1, math.ceil(peak_commands / (measured.shard_commands_per_second * utilisation)))
    stored = events * traffic.years * measured.store_bytes_per_event
    for_storage = max(1, math.ceil(stored / traffic.shard_storage_bytes))
    shards = 1 << (max(for_peak, for_storage) - 1).bit_length()
    projections = max(
        1, math.ceil(peak_events / (measured.projection_events_per_second * utilisation))
    )
    # Every projection process needs a partition of its own; a multiple of the shards.
    partitions = shards * PARTITIONS_PER_SHARD
    while partitions < projections:
        partitions += shards
    inbound = peak_commands * measured.kafka_bytes_per_message
    outbound = peak_events * measured.kafka_bytes_per_event
    # Each broker takes its share of every record written, times the replicas.
    written = (inbound + outbound) * REPLICATION
    budget = measured.broker_bytes_per_second * utilisation
    brokers = max(REPLICATION, math.ceil(written / budget) if budget > 0 else REPLICATION)
    kafka_year = (
        messages * measured.kafka_bytes_per_message + events * measured.kafka_bytes_per_event
    ) * REPLICATION
    return Plan(
        messages_per_year=messages,
        events_per_year=events,
        peak_commands_per_second=peak_commands,
        peak_events_per_second=peak_events,
        shards_for_peak=for_peak,
        shards_for_storage=for_storage,
        shards=shards,
        partitions=partitions,
        projection_processes=projections,
        brokers=brokers,
        postgres_bytes_per_year=events * measured.store_bytes_per_event,
        kafka_bytes_per_year=kafka_year,
    )
