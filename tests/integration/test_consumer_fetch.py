"""A consumer that has caught up fetches when its caller asks for more, not as it hands out a
batch: what arrived while the caller worked on a batch comes with the next poll, not a batch
later (`broker._fetch_when_asked`; the latency it cost is in `docs/performance.md`)."""

from __future__ import annotations

import time

import pytest

from ledger.broker import Consumer, OutRecord, Producer, ensure_topics
from ledger.settings import Settings

from .helpers import services_of

pytestmark = pytest.mark.integration

MAX_RECORDS = 5


def _poll_until(consumer: Consumer, wanted: int) -> list[bytes | None]:
    got: list[bytes | None] = []
    deadline = time.monotonic() + 30
    while len(got) < wanted and time.monotonic() < deadline:
        got += [r.value for r in consumer.poll(timeout_ms=500)]
    return got


def test_what_arrives_during_a_batch_comes_with_the_next_poll(own_settings: Settings) -> None:
    bootstrap = services_of(own_settings).kafka_bootstrap
    topic = f"{own_settings.topic_prefix}fresh"
    ensure_topics(bootstrap, {topic: 1}, {})
    producer = Producer(bootstrap, "test-fresh")
    consumer = Consumer(bootstrap, own_settings.group_id("fresh"), "test-fresh", MAX_RECORDS)
    try:
        producer.send_all([OutRecord(topic, b"k", str(n).encode(), []) for n in range(7)])
        consumer.subscribe([topic], lambda _p: None, lambda _p: None)
        # Five, then the two left buffered: the poll that hands those out has caught up.
        assert _poll_until(consumer, 7) == [str(n).encode() for n in range(7)]
        # The caller works on that batch while ten records arrive, one at a time: a fetch
        # sent ahead would have been answered with the first of them alone.
        for n in range(7, 17):
            producer.send_all([OutRecord(topic, b"k", str(n).encode(), [])])
            time.sleep(0.02)
        batch = [r.value for r in consumer.poll(timeout_ms=5_000)]
    finally:
        consumer.close()
        producer.close()
    assert batch == [str(n).encode() for n in range(7, 7 + MAX_RECORDS)]
