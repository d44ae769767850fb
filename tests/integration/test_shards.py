"""The event store in two shards (`docs/sharding.md`) against one, on the real services.

The same cohort (every message type, a malformed message among them) goes through `ledger run`
twice: once with one shard, once with two (two databases standing for two servers: a shard is
only a URL to the ledger). Both runs must end in the same streams, the same accepted and
rejected messages and the same read models row for row (so the same `learner show` answers,
retention figures and certificates), and `ledger audit verify` must pass over both shards,
which includes each shard's copy of the catalog against its home shard's.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from commands.intake import IntakeWorker
from ledger.broker import OutRecord, Producer, end_offsets
from ledger.domain import learner_aggregate_id, specialization_aggregate_id
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bootstrap import services
from ledger.entrypoints.chaos.state import EndState, capture, compare
from ledger.entrypoints.demo.cohort import CATALOG, Cohort
from ledger.entrypoints.metrics import LedgerCollector
from ledger.errors import ConfigurationError
from ledger.relay import EVENTS_STREAM
from ledger.settings import Settings
from ledger.sharding import Layout, shard_of_rejection
from ledger.stack import kafka

from .helpers import (
    ledger_cli,
    projected_to_the_end,
    running_pipeline,
    services_of,
    wait_for,
)

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
    urls = [bootstrap.database_on(admin.database_url, database) for database in databases]
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


def _intake_done(settings: Settings, url: str, partitions: list[int] | None = None) -> bool:
    """Whether the shard at `url` has applied `partitions` of the intake (all) to their end."""
    ends = end_offsets(services_of(settings).kafka_bootstrap, settings.intake_topic)
    with psycopg.connect(url, autocommit=True) as conn:
        done = dict(
            conn.execute(
                "SELECT partition, next_offset FROM ledger_intake_positions WHERE topic = %s",
                (settings.intake_topic,),
            ).fetchall()
        )
    wanted = ends if partitions is None else {p: ends[p] for p in partitions}
    return all(done.get(p, 0) >= end for p, end in wanted.items())


def _settled(settings: Settings) -> bool:
    """Every shard has applied every partition of the intake and relayed all it stored, and
    every read model is at the end of `ledger.events`."""
    for url in services_of(settings).shard_urls:
        if not _intake_done(settings, url):
            return False
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT (SELECT coalesce(max(notification_id), 0) FROM ledger_events),"
                " (SELECT coalesce(max(position), 0) FROM ledger_relay_positions"
                "  WHERE stream = %s)",
                (EVENTS_STREAM,),
            ).fetchone()
        if row is None or row[1] < row[0]:
            return False
    return projected_to_the_end(settings)


def _run(
    settings: Settings, log: Path, meanwhile: Callable[[Settings], None] | None = None
) -> EndState:
    """The cohort through `ledger run`; `meanwhile` is called once the catalog is in and the
    learners' messages sent (a fault, while the pipeline works)."""
    cohort = Cohort(LEARNERS, SEED, settings.intake_topic, run_id="shards")
    found = services_of(settings)
    producer = Producer(found.kafka_bootstrap, "test-shards")
    try:
        with running_pipeline(settings, log):
            producer.send_all(cohort.catalog())
            wait_for(lambda: _catalog_everywhere(settings) or None, 120, "the catalog")
            producer.send_all(cohort.learner_messages())
            if meanwhile is not None:
                meanwhile(settings)
            wait_for(lambda: _settled(settings) or None, 240, "the pipeline to settle")
    finally:
        producer.close()
    return _end(settings)


def _end(settings: Settings) -> EndState:
    """The run's end state, read from every shard (`chaos.state.capture`)."""
    found = services_of(settings)
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
        metrics = _metrics(two_settings)
        sent = sum(
            end_offsets(
                services_of(two_settings).kafka_bootstrap, two_settings.intake_topic
            ).values()
        )
        layout = Layout(2, two_settings.partitions)
        learners = [s for s in two.streams if s.startswith("learner-")]
        homes = {layout.shard_of(s) for s in learners}
        # An auditor's commands find a learner of the second shard there.
        second = next(s for s in learners if layout.shard_of(s) == 1)
        history = json.loads(ledger_cli(two_settings, "audit", "history", second, "--json").stdout)
        exported = ledger_cli(two_settings, "audit", "export", second).stdout.splitlines()
    assert one.events > 150 and one.accepted > 100
    assert sum(one.rejections.values()) >= 1  # the cohort's malformed message, at least
    assert homes == {0, 1}, "the learners should live on both shards"
    assert len(history["events"]) == len(two.streams[second])
    assert len(exported) == len(two.streams[second]) + 1  # the events, then the summary
    # /metrics over two shards: each shard's store and relay, the intake as far as the slowest.
    assert {
        labels.get("shard") for name, labels, _ in metrics if name == "ledger_events_stored_total"
    } == {"1", "2"}
    relays = [(labels, v) for name, labels, v in metrics if labels.get("stage") == "relay"]
    assert {(labels["shard"], labels["stream"]) for labels, _ in relays} == {
        (shard, stream) for shard in ("1", "2") for stream in ("events", "rejections")
    }
    assert all(v == 0 for _, v in relays)  # every shard's relay caught up
    handled = [v for name, _, v in metrics if name == "ledger_intake_messages_total"]
    assert handled == [sent]
    assert not one.verify, one.verify_examples
    _ended_alike(one, two)


def _ended_alike(one: EndState, two: EndState) -> None:
    """The two-shard run ended as the one-shard run did, and `audit verify` passed over it."""
    assert not two.verify, two.verify_examples
    difference = compare(one, two)
    assert (difference.lost, difference.duplicated, difference.reordered) == (0, 0, 0), (
        difference.notes
    )
    assert difference.diverged == 0, difference.notes
    assert two.accepted == one.accepted
    assert two.rejections == one.rejections


def _metrics(settings: Settings) -> list[tuple[str, dict[str, str], float]]:
    """What `/metrics` shows of the pipeline (the API's collector, asked in-process)."""
    found = services_of(settings)
    shards = bootstrap.open_shards(found)
    try:
        collector = LedgerCollector(
            settings,
            lambda: found,
            lambda: shards,
            lambda: psycopg.connect(found.database_url, autocommit=True),
        )
        return [(s.name, dict(s.labels), s.value) for m in collector.collect() for s in m.samples]
    finally:
        for shard in shards:
            shard.close()


def _parses(value: bytes | None) -> bool:
    """Whether a message is JSON at all (the cohort has one that is not, refused for that)."""
    try:
        orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return False
    return True


def _database(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


def test_one_shard_away_the_other_flows_and_it_catches_up_after(
    base_settings: Settings, own_settings: Settings, tmp_path: Path
) -> None:
    """Shard 2's database refuses every connection (its sessions ended) while the learners'
    messages arrive: shard 1's learners go all the way through meanwhile; once shard 2 is
    back its learners catch up; the end is the one-shard run's, nothing lost or doubled."""
    one = _run(own_settings, tmp_path / "one.log")
    away: dict[str, object] = {}

    def shard_two_away(settings: Settings) -> None:
        first, second = services_of(settings).shard_urls
        name = _database(second)
        with psycopg.connect(first, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        try:
            layout = Layout(2, settings.partitions)
            wait_for(
                lambda: _intake_done(settings, first, layout.partitions_of(0)) or None,
                120,
                "shard 1's partitions while shard 2 is away",
            )
            away["flowed"] = True
            time.sleep(3)  # the intake and shard 2's relay keep failing to reach it meanwhile
        finally:
            with psycopg.connect(first, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    with shards_of(base_settings, 2) as two_settings:
        log = tmp_path / "two.log"
        two = _run(two_settings, log, shard_two_away)
        text = log.read_text()
    assert away == {"flowed": True}
    assert "intake.shard_unavailable" in text
    assert "intake.shard_back" in text
    _ended_alike(one, two)


def test_with_shards_a_message_on_another_partition_than_its_key_s_is_refused(
    base_settings: Settings,
) -> None:
    """With two shards, a learner's messages placed on a partition of the other shard would
    split the learner's history: each is kept as a rejection `wrong_partition`, where it came,
    and no shard stores anything of that learner."""
    with shards_of(base_settings, 2) as settings:
        found = services_of(settings)
        layout = Layout(2, settings.partitions)
        cohort = Cohort(10, SEED, settings.intake_topic, run_id="misplaced")
        messages = cohort.learner_messages()
        # A learner of the first shard, sent to a partition of the second (whose rejection
        # ids start at 10^12).
        learner = next(
            m.key
            for m in messages
            if m.key and m.key.startswith(b"learner-") and layout.shard_of(m.key) == 0
        )
        assert learner is not None
        wrong = layout.partitions_of(1)[0]
        misplaced = [
            replace(m, partition=wrong) for m in messages if m.key == learner and _parses(m.value)
        ]
        producer = Producer(found.kafka_bootstrap, "test-shards")
        try:
            producer.send_all([*cohort.catalog(), *misplaced])
        finally:
            producer.close()
        first, second = bootstrap.open_shards(found)
        worker = IntakeWorker(first, settings, found.kafka_bootstrap, more_shards=[second])
        try:

            def done() -> bool | None:
                worker.step()
                return all(_intake_done(settings, url) for url in found.shard_urls) or None

            wait_for(done, 90, "the intake")
        finally:
            worker.close()
            first.close()
            second.close()
        where = found.shard_urls[layout.shard(wrong)]
        with psycopg.connect(where, autocommit=True) as conn:
            reasons = [
                r
                for (r,) in conn.execute(
                    "SELECT reason FROM ledger_rejections WHERE partition = %s", (wrong,)
                ).fetchall()
            ]
        assert reasons == ["wrong_partition"] * len(misplaced)
        # Each shard numbers its rejections apart (shard N from N - 1 times 10^12): the id says
        # where a rejection is, and the operators' commands find it there.
        listed = [
            json.loads(line)
            for line in ledger_cli(settings, "rejections", "list", "--json").stdout.splitlines()
        ]
        assert sorted(r["reason"] for r in listed) == reasons
        assert {shard_of_rejection(r["rejection_id"]) for r in listed} == {layout.shard(wrong)}
        shown = ledger_cli(settings, "rejections", "show", str(listed[0]["rejection_id"]), "--json")
        assert json.loads(shown.stdout)["reason"] == "wrong_partition"
        stream = learner_aggregate_id(learner.decode())
        for url in found.shard_urls:
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM ledger_events WHERE originator_id = %s", (stream,)
                ).fetchone()
            assert row == (0,)


def test_stack_up_with_two_shards_starts_two_servers_each_with_an_event_store() -> None:
    """`ledger stack up postgres --shards 2` on a state directory of its own (its servers
    listen on Unix sockets only, beside the running stack): two embedded servers, the event
    store's tables in both, the read side in the first; the count is kept, another refused."""
    state = Path(tempfile.mkdtemp(prefix="ls-", dir="/tmp"))  # socket paths must stay short
    state.chmod(0o755)  # pgserver runs PostgreSQL as a user of its own when started by root
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LEDGER_DATABASE_URL", "LEDGER_SHARDS", "LEDGER_TOPIC_PREFIX")
    }
    env["LEDGER_STATE_DIR"] = str(state)
    ledger = str(Path(sys.executable).with_name("ledger"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ledger, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    try:
        up = cli("stack", "up", "postgres", "--shards", "2")
        assert up.returncode == 0, up.stderr[-3000:]
        found = services(Settings.from_env(env))
        assert len(found.shard_urls) == 2
        assert len(set(found.shard_urls)) == 2
        tables = []
        for url in found.shard_urls:
            with psycopg.connect(url, autocommit=True) as conn:
                tables.append(
                    {
                        name
                        for (name,) in conn.execute(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                        ).fetchall()
                    }
                )
        assert all({"ledger_events", "ledger_intake_positions"} <= t for t in tables)
        assert "ledger_staff_tokens" in tables[0]
        assert "ledger_staff_tokens" not in tables[1]
        refused = cli("stack", "up", "postgres", "--shards", "3")
        assert refused.returncode != 0
        assert "made with 2 shard(s)" in refused.stderr + refused.stdout
    finally:
        cli("stack", "down", "postgres")
        shutil.rmtree(state, ignore_errors=True)


def _through(settings: Settings, log: Path, batches: list[list[OutRecord]]) -> None:
    """`ledger run` on `settings`, each batch of messages sent once the one before has gone
    all the way through (the first is the catalog: it must be in every shard)."""
    producer = Producer(services_of(settings).kafka_bootstrap, "test-shards")
    try:
        with running_pipeline(settings, log):
            for n, batch in enumerate(batches):
                producer.send_all(batch)
                if n == 0 and batch and batch[0].value and b"specialization" in batch[0].value:
                    wait_for(lambda: _catalog_everywhere(settings) or None, 120, "the catalog")
                wait_for(lambda: _settled(settings) or None, 240, "the pipeline to settle")
    finally:
        producer.close()


def _rows(urls: Sequence[str]) -> set[tuple[Any, ...]]:
    """Every stored event's row in these databases: id, version, topic and its stored bytes."""
    rows: set[tuple[Any, ...]] = set()
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            rows.update(
                conn.execute(
                    "SELECT originator_id, originator_version, topic, state FROM ledger_events"
                ).fetchall()
            )
    return rows


def test_one_shard_doubled_to_two_keeps_every_chain_and_ends_as_one_shard_does(
    base_settings: Settings, own_settings: Settings, tmp_path: Path
) -> None:
    """A ledger on one shard takes the first half of the cohort's messages; the pipeline is
    stopped; `ledger shards double` moves it to two shards; the second half then goes through
    the two. Every stored row (so every hash chain) is the same before and after the move, each
    learner in exactly one shard; `audit verify` passes over the two; and the end is the one
    of a ledger that took the whole cohort on one shard: nothing lost, doubled or reordered,
    every read model the same (new events on the moved learners' partitions are not taken for
    ones already seen)."""
    cohort = Cohort(LEARNERS, SEED, own_settings.intake_topic, run_id="shards")
    messages = cohort.learner_messages()
    half = len(messages) // 2
    _through(
        own_settings, tmp_path / "one.log", [cohort.catalog(), messages[:half], messages[half:]]
    )
    one = _end(own_settings)

    with shards_of(base_settings, 2) as two_settings:
        first_url, second_url = services_of(two_settings).shard_urls
        single = two_settings.model_copy(update={"shards": first_url})
        cohort = Cohort(LEARNERS, SEED, two_settings.intake_topic, run_id="shards")
        messages = cohort.learner_messages()
        _through(single, tmp_path / "before.log", [cohort.catalog(), messages[:half]])
        before = _rows([first_url])
        done = ledger_cli(single, "shards", "double", second_url, "--json", check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        report = json.loads(done.stdout)
        assert report["shards"].split() == [first_url, second_url]
        assert report["learners"][0] > 0
        after_first, after_second = _rows([first_url]), _rows([second_url])
        layout = Layout(2, two_settings.partitions)
        catalog = {r for r in after_second if r in after_first}
        assert catalog and all(r[2].startswith("ledger.specialization.") for r in catalog)
        assert (after_first | after_second) == before  # every row kept, none altered
        assert not (after_first & after_second) - catalog  # a learner in one shard only
        moved = after_second - catalog
        assert moved and len(moved) < len(before)
        _through(two_settings, tmp_path / "after.log", [messages[half:]])
        two = _end(two_settings)
        learners = [s for s in two.streams if s.startswith("learner-")]
        assert {layout.shard_of(s) for s in learners} == {0, 1}
    assert not one.verify, one.verify_examples
    _ended_alike(one, two)


def test_two_shards_on_three_brokers_end_as_one_shard_does(base_settings: Settings) -> None:
    """The comparison above, one shard against two, on a three-node Kafka cluster (every topic
    on three nodes, two in sync): `ledger stack up --brokers 3` in a network namespace of its
    own (its brokers listen on 9092-9097 beside the running stack's), with its own embedded
    PostgreSQL, and that test run there. Needs root (or user namespaces) and `unshare`, as
    `ledger chaos` does."""
    lib = kafka.ensure_jars(base_settings.state_path)
    state = Path(tempfile.mkdtemp(prefix="lk-", dir="/tmp"))  # socket paths must stay short
    state.chmod(0o755)  # pgserver runs PostgreSQL as a user of its own when started by root
    (state / "kafka").mkdir()
    (state / "kafka" / "lib").symlink_to(lib.resolve())
    ledger = Path(sys.executable).with_name("ledger")
    script = " && ".join(
        [
            "ip link set lo up",
            f"{ledger} stack up --brokers 3",
            f"{sys.executable} -m pytest -q -p no:cacheprovider {__file__}"
            " -k test_two_shards_end_as_one_does_and_audit_verify_passes_over_both",
        ]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update({"LEDGER_STATE_DIR": str(state), "CI": "true"})
    as_root = [] if os.geteuid() == 0 else ["--map-root-user"]
    try:
        done = subprocess.run(
            [
                "unshare",
                "--net",
                *as_root,
                "bash",
                "-c",
                f"{script}; status=$?; {ledger} stack down > /dev/null 2>&1; exit $status",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 copies of every partition, a write acknowledged once 2 have it" in done.stdout
    assert "1 passed" in done.stdout


def test_topics_of_another_partition_count_than_ledger_partitions_are_refused(
    own_settings: Settings,
) -> None:
    """A learner's partition, and so their shard and their events' partition, is counted in
    LEDGER_PARTITIONS: a worker facing topics made with another count says so and stops, rather
    than sending events to partitions that do not exist or refusing every message."""
    twelve = own_settings.model_copy(update={"partitions": 12})
    with pytest.raises(ConfigurationError, match="has 6 partitions but LEDGER_PARTITIONS is 12"):
        bootstrap.prepare_topics(twelve, services_of(twelve))
