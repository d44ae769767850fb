"""The event store in two shards (`docs/sharding.md`) against one, on the real services.

The same cohort (every message type, a malformed message among them) goes through `ledger run`
twice: once with one shard, once with two (two databases standing for two servers: a shard is
only a URL to the ledger). Both runs must end in the same streams, the same accepted and
rejected messages and the same read models row for row (so the same `learner show` answers,
retention figures and certificates), and `ledger audit verify` must pass over both shards,
which includes each shard's copy of the catalog against its home shard's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ledger.broker import Producer, end_offsets
from ledger.domain import specialization_aggregate_id
from ledger.entrypoints import bootstrap
from ledger.entrypoints.chaos.state import EndState, capture, compare
from ledger.entrypoints.demo.cohort import CATALOG, Cohort
from ledger.relay import EVENTS_STREAM
from ledger.settings import Settings
from ledger.sharding import Layout

from .helpers import projected_to_the_end, running_pipeline, services_of, wait_for

pytestmark = pytest.mark.integration

LEARNERS = 40
SEED = 11


@contextmanager
def shards_of(base_settings: Settings, count: int) -> Iterator[Settings]:
    """Settings naming `count` new databases as the event store's shards, and new topics."""
    run = secrets.token_hex(4)
    databases = [f"ledger_test_{run}_{n}" for n in range(1, count + 1)]
    admin = services_of(base_settings)
    with bootstrap.connect(admin) as conn:
        for database in databases:
            conn.execute(f'CREATE DATABASE "{database}"')
    urls = [_url(admin.database_url, database) for database in databases]
    settings = base_settings.model_copy(
        update={"database_url": urls[0], "shards": ",".join(urls), "topic_prefix": f"test-{run}."}
    )
    try:
        found = services_of(settings)
        bootstrap.prepare_database(found)
        bootstrap.prepare_topics(settings, found)
        yield settings
    finally:
        with bootstrap.connect(admin) as conn:
            for database in databases:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _url(conninfo: str, database: str) -> str:
    """A URL (what `LEDGER_SHARDS` lists) for `database` on the server of `conninfo`."""
    parts = conninfo_to_dict(conninfo)
    host = quote(str(parts.get("host") or "localhost"), safe="")
    user = quote(str(parts.get("user") or "postgres"), safe="")
    return f"postgresql://{user}@/{database}?host={host}&port={parts.get('port') or 5432}"


def _catalog_everywhere(settings: Settings) -> bool:
    ids = [specialization_aggregate_id(s.specialization_id) for s in CATALOG]
    for url in services_of(settings).shard_urls:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(DISTINCT originator_id) FROM ledger_events"
                " WHERE originator_id = ANY(%s)",
                (ids,),
            ).fetchone()
        if row is None or row[0] < len(ids):
            return False
    return True


def _settled(settings: Settings) -> bool:
    """Every shard has applied every partition of the intake and relayed all it stored, and
    every read model is at the end of `ledger.events`."""
    found = services_of(settings)
    ends = end_offsets(found.kafka_bootstrap, settings.intake_topic)
    for url in found.shard_urls:
        with psycopg.connect(url, autocommit=True) as conn:
            done = dict(
                conn.execute(
                    "SELECT partition, next_offset FROM ledger_intake_positions WHERE topic = %s",
                    (settings.intake_topic,),
                ).fetchall()
            )
            row = conn.execute(
                "SELECT (SELECT coalesce(max(notification_id), 0) FROM ledger_events),"
                " (SELECT coalesce(max(position), 0) FROM ledger_relay_positions"
                "  WHERE stream = %s)",
                (EVENTS_STREAM,),
            ).fetchone()
        if any(done.get(p, 0) < end for p, end in ends.items()):
            return False
        if row is None or row[1] < row[0]:
            return False
    return projected_to_the_end(settings)


def _run(settings: Settings, log: Path) -> EndState:
    cohort = Cohort(LEARNERS, SEED, settings.intake_topic, run_id="shards")
    found = services_of(settings)
    producer = Producer(found.kafka_bootstrap, "test-shards")
    try:
        with running_pipeline(settings, log):
            producer.send_all(cohort.catalog())
            wait_for(lambda: _catalog_everywhere(settings) or None, 120, "the catalog")
            producer.send_all(cohort.learner_messages())
            wait_for(lambda: _settled(settings) or None, 240, "the pipeline to settle")
    finally:
        producer.close()
    first, *more = bootstrap.open_shards(found)
    try:
        return capture(settings, found, first, more)
    finally:
        for ledger in (first, *more):
            ledger.close()


def test_two_shards_end_as_one_does_and_audit_verify_passes_over_both(
    base_settings: Settings, own_settings: Settings, tmp_path: Path
) -> None:
    one = _run(own_settings, tmp_path / "one.log")
    with shards_of(base_settings, 2) as two_settings:
        two = _run(two_settings, tmp_path / "two.log")
        layout = Layout(2, two_settings.partitions)
        learners = [s for s in two.streams if s.startswith("learner-")]
        homes = {layout.shard_of(s) for s in learners}
    assert one.events > 150 and one.accepted > 100
    assert sum(one.rejections.values()) >= 1  # the cohort's malformed message, at least
    assert homes == {0, 1}, "the learners should live on both shards"
    assert not two.verify, two.verify_examples
    assert not one.verify, one.verify_examples
    difference = compare(one, two)
    assert (difference.lost, difference.duplicated, difference.reordered) == (0, 0, 0), (
        difference.notes
    )
    assert difference.diverged == 0, difference.notes
    assert two.accepted == one.accepted
    assert two.rejections == one.rejections
