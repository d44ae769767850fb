"""The producer's partitioner remembers each key's partition and answers as kafka-python's."""

from __future__ import annotations

from kafka.partitioner.default import DefaultPartitioner

from ledger.broker import _RememberingPartitioner


class _Cluster:
    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, _topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, _topic: str) -> set[int]:
        return self.partitions


def test_it_answers_as_the_default_partitioner_and_again_for_more_partitions() -> None:
    remembering, default = _RememberingPartitioner(), DefaultPartitioner()
    keys = [f"learner-{n}".encode() for n in range(500)]
    for partitions in (6, 6, 12):  # the second round is answered from memory
        cluster = _Cluster(partitions)
        for key in keys:
            expected = default.partition("t", key, key, b"v", b"v", cluster)
            assert remembering.partition("t", key, key, b"v", b"v", cluster) == expected
    assert len(remembering._known) == 1000  # 500 keys at 6 partitions, 500 at 12


def test_a_record_without_a_key_goes_to_some_partition() -> None:
    cluster = _Cluster(6)
    assert _RememberingPartitioner().partition("t", None, None, b"v", b"v", cluster) in range(6)
