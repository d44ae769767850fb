"""The ledger's producer on a real broker: keys land where the Java client (and kafka-python,
which the ledger used before) put them, so a learner's events keep their partition, and where
`broker.partition_of` says, which decides a learner's shard (`ledger.sharding`)."""

from __future__ import annotations

import pytest

from ledger.broker import Consumer, OutRecord, Producer, ensure_topics, partition_of
from ledger.settings import Settings

from .helpers import services_of

pytestmark = pytest.mark.integration


def test_keys_land_on_the_partition_murmur2_gives_and_keep_their_order(
    own_settings: Settings,
) -> None:
    bootstrap = services_of(own_settings).kafka_bootstrap
    topic = f"{own_settings.topic_prefix}producer"
    ensure_topics(bootstrap, {topic: 6}, {})
    keys = [f"learner-{n}".encode() for n in range(200)] + [b"ds", "é".encode(), b"\\xff\\x00"]
    records = [
        OutRecord(topic=topic, key=key, value=f"{n}".encode(), headers=[("n", None)])
        for n in range(3)
        for key in keys
    ]
    producer = Producer(bootstrap, "test-producer")
    try:
        producer.send_all(records)
    finally:
        producer.close()
    consumer = Consumer(bootstrap, f"{own_settings.topic_prefix}g", "test-producer", 1000)
    got: list[tuple[bytes | None, int, bytes | None, object]] = []
    try:
        consumer.subscribe([topic], lambda _: None, lambda _: None)
        for _ in range(100):
            got += [(r.key, r.partition, r.value, r.headers) for r in consumer.poll(500)]
            if len(got) >= len(records):
                break
    finally:
        consumer.close()
    assert len(got) == len(records)
    for key, partition, _, headers in got:
        assert key is not None
        assert partition == partition_of(key, 6)  # where `ledger.sharding` expects it
        assert list(headers) == [("n", b"")]  # a null header value goes as empty
    for key in keys:
        assert [v for k, _, v, _ in got if k == key] == [b"0", b"1", b"2"]
