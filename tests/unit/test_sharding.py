"""Where a learner lives across shards (`ledger.sharding`): the functions the intake, the
relays and the migration all route by, checked without any service."""

from __future__ import annotations

import random

import pytest

from ledger.errors import ConfigurationError
from ledger.sharding import Layout


def test_a_key_s_partition_is_the_producers_placement_whatever_its_type() -> None:
    # `broker.partition_of`, held by tests/integration/test_producer.py to where the ledger's
    # producer puts keys on a real broker.
    layout = Layout(1, 6)
    assert layout.partition("learner-1") == layout.partition(b"learner-1")
    assert layout.partition("é") == layout.partition("é".encode())
    assert {layout.partition(f"learner-{n}") for n in range(100)} == set(range(6))


def test_every_partition_belongs_to_one_shard_and_shards_share_them_evenly() -> None:
    layout = Layout(2, 6)
    assert [layout.shard(p) for p in range(6)] == [0, 1, 0, 1, 0, 1]
    assert layout.partitions_of(0) == [0, 2, 4]
    assert layout.partitions_of(1) == [1, 3, 5]


def test_partition_counts_must_be_multiples_of_the_shards() -> None:
    with pytest.raises(ConfigurationError, match="multiple of the number of shards"):
        Layout(4, 6)
    with pytest.raises(ConfigurationError, match="at least one shard"):
        Layout(0, 6)


def test_an_aggregate_s_events_go_where_its_subject_is_decided_whatever_the_shards() -> None:
    rng = random.Random(7)
    for shards, partitions in ((1, 6), (2, 6), (3, 6), (4, 12), (2, 2)):
        layout = Layout(shards, partitions)
        for _ in range(300):
            subject = f"learner-{rng.randrange(10**9)}"
            target = layout.events_partition(subject)
            assert target == layout.partition(subject)  # the subject's intake partition
            assert layout.shard(target) == layout.shard_of(subject)  # fed by its shard alone


def test_doubling_the_shards_keeps_every_learner_on_its_events_partition() -> None:
    before, after = Layout(2, 12), Layout(4, 12)
    for n in range(300):
        subject = f"learner-{n}"
        assert before.events_partition(subject) == after.events_partition(subject)


def test_doubling_the_shards_moves_a_learner_to_one_new_shard_or_none() -> None:
    before, after = Layout(2, 12), Layout(4, 12)
    for n in range(300):
        key = f"learner-{n}"
        old, new = before.shard_of(key), after.shard_of(key)
        assert new in (old, old + 2)
