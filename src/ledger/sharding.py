"""Where a learner lives when the event store is split across PostgreSQL servers (shards).

A learner belongs to one shard for life, fixed by the Kafka partition their key goes to, so that
an intake batch from one partition commits in one shard's transaction with its positions (no
two-phase commit; `docs/sharding.md` has the whole design):

    partition(key) = murmur2(key) mod P        (how every client of the ledger places a key)
    shard(partition) = partition mod N         (P, the partition count, a multiple of N)

Each shard's relay publishes its own notification log, and the projections' dedupe is exact only
if every `ledger.events` partition is fed by one log. So an aggregate's events go to the
partition its subject (learner id, specialization id) has on `ledger.intake`
(`events_partition`), whatever the number of shards: a partition of the shard that decides the
subject, and the same partition before and after the shards are doubled (a learner who moves to
a new shard keeps it; only the log feeding it changes, `docs/sharding.md`). The record's key
stays the aggregate id (the contract, DESIGN §4); the partition is given explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ledger.broker import partition_of
from ledger.errors import ConfigurationError

#: Each shard numbers its rejections from its index times this (shard 1 from 1, as always),
#: so a rejection's id names its shard and the operators' tools need no other key.
REJECTION_ID_SPAN = 10**12


def shard_of_rejection(rejection_id: int) -> int:
    """The shard (0-based) that keeps the rejection with this id."""
    return rejection_id // REJECTION_ID_SPAN


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

    def events_partition(self, subject: str | bytes) -> int:
        """The `ledger.events` partition of the aggregate whose subject is `subject`: its
        subject's intake partition, fed by that subject's shard alone and unchanged when the
        shards are doubled."""
        return self.partition(subject)


def slowest(positions: Sequence[Mapping[int, int]], partitions: Iterable[int]) -> dict[int, int]:
    """Each partition's position as far as the shard furthest behind on it (`positions`: each
    shard's next offset by partition; a partition a shard has no position for is at 0): how
    far the intake has applied a partition everywhere, since every shard keeps one for each."""
    return {p: min((found.get(p, 0) for found in positions), default=0) for p in partitions}
