"""Where a learner lives when the event store is split across PostgreSQL servers (shards).

A learner belongs to one shard for life, fixed by the Kafka partition their key goes to, so that
an intake batch from one partition commits in one shard's transaction with its positions (no
two-phase commit; `docs/sharding.md` has the whole design):

    partition(key) = murmur2(key) mod P        (how every client of the ledger places a key)
    shard(partition) = partition mod N         (P, the partition count, a multiple of N)

Each shard's relay publishes its own notification log, and the projections' dedupe is exact only
if every `ledger.events` partition is fed by one log: a shard writes an aggregate's events to the
partition of its key moved to the nearest partition of that shard below it
(`events_partition`). With one shard that is the key's own partition: nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.broker import partition_of
from ledger.errors import ConfigurationError


@dataclass(frozen=True)
class Layout:
    """`shards` event stores behind `partitions` partitions of each ledger topic."""

    shards: int
    partitions: int

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ConfigurationError("the ledger needs at least one shard")
        if self.partitions % self.shards:
            raise ConfigurationError(
                f"{self.partitions} partitions cannot be shared by {self.shards} shards: "
                "set LEDGER_PARTITIONS to a multiple of the number of shards "
                "(each shard owns every N-th partition)"
            )

    def partition(self, key: str | bytes) -> int:
        """The partition of `ledger.intake` a message keyed `key` belongs on."""
        return partition_of(key.encode() if isinstance(key, str) else key, self.partitions)

    def shard(self, partition: int) -> int:
        """The shard (0-based) that decides the learners of `partition`."""
        return partition % self.shards

    def shard_of(self, key: str | bytes) -> int:
        """The shard of a learner (or specialization) id: where its stream lives."""
        return self.shard(self.partition(key))

    def partitions_of(self, shard: int) -> list[int]:
        """The partitions whose learners `shard` decides."""
        return list(range(shard, self.partitions, self.shards))

    def events_partition(self, key: str | bytes, shard: int) -> int:
        """The `ledger.events` partition `shard`'s relay writes the aggregate keyed `key` to:
        fixed per aggregate (its order holds), always one of `shard`'s partitions (so each is
        fed by one notification log), and the key's own partition with one shard."""
        own = self.partition(key)
        return own - own % self.shards + shard
