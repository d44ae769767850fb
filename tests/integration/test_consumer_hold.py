"""A held consumer stays in its group but hands out nothing, and loses nothing, until released."""

from __future__ import annotations

import pytest

from ledger.broker import Consumer, OutRecord, Producer
from ledger.settings import Settings

from .helpers import services_of

pytestmark = pytest.mark.integration


def test_a_held_consumer_hands_out_everything_once_released(own_settings: Settings) -> None:
    bootstrap = services_of(own_settings).kafka_bootstrap
    topic = own_settings.intake_topic
    producer = Producer(bootstrap, "test-hold")
    try:
        producer.send_all([OutRecord(topic, f"k{n}".encode(), b"v", []) for n in range(60)])
    finally:
        producer.close()
    consumer = Consumer(bootstrap, own_settings.group_id("hold-test"), "test-hold", 1000)
    try:
        consumer.subscribe([topic], lambda _p: None, lambda _p: None)
        consumer.hold()
        for _ in range(15):
            assert consumer.poll(timeout_ms=200) == []
        assert len(consumer.assignment()) == own_settings.partitions
        consumer.release()
        seen: list[tuple[int, int]] = []
        for _ in range(50):
            seen.extend((r.partition, r.offset) for r in consumer.poll(timeout_ms=200))
            if len(seen) >= 60:
                break
    finally:
        consumer.close()
    assert len(seen) == len(set(seen)) == 60
