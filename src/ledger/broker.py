"""The one module that uses kafka-python; everything else sees small typed classes.

(`ledger.kafka_records`, its helper, swaps in a faster reader of records; see there.)

kafka-python is untyped and its 3.0 API differs from older releases in ways that bite (idempotence
silently off with `acks=1`, serializers called with headers, admin answers as dicts). Keeping it
here gives the rest of the code typed `Record`s and one exception, `BrokerUnavailableError`, for
"Kafka is not there right now: wait and try again".
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import confluent_kafka
from kafka import KafkaAdminClient, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from ledger import kafka_records
from ledger.errors import LedgerError
from ledger.logs import get_logger

Headers = list[tuple[str, bytes | None]]

log = get_logger(__name__)


#: The longest a poll waits for the member to finish joining its group: past the group's session
#: timeout (10 s), the longest a broker holds a JoinGroup waiting for a member that died.
JOIN_WAIT_MS = 15_000

#: The most often a consumer sends its offsets to Kafka (`Consumer.commit` says why so seldom).
COMMIT_EVERY_S = 1.0


class BrokerUnavailableError(LedgerError):
    """Raised when Kafka does not answer in time; the caller waits and tries again."""

    code = "broker_unavailable"


class Record(NamedTuple):
    """A record read from Kafka.

    A named tuple rather than a dataclass: the projection worker makes tens of thousands a
    second, and a tuple is built in C.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = []  # noqa: RUF012 - a tuple's default is shared; nothing appends to it
    timestamp_ms: int = 0

    def header(self, name: str) -> str | None:
        """The first header of that name, decoded as UTF-8."""
        headers = self.headers
        if isinstance(headers, kafka_records.EncodedHeaders):
            headers = headers.pairs()
        for key, value in headers:
            if key == name:
                return None if value is None else value.decode("utf-8", errors="replace")
        return None


@dataclass(frozen=True)
class OutRecord:
    """A record to publish."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    #: Where it goes; None: where its key hashes to (murmur2), as for every record but the
    #: relay's (`ledger.sharding.Layout.events_partition`).
    partition: int | None = None


PartitionsCallback = Callable[[list[tuple[str, int]]], None]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_assigned: PartitionsCallback, on_revoked: PartitionsCallback) -> None:
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked

    def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        self._on_revoked([(tp.topic, tp.partition) for tp in revoked])

    def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        self._on_assigned([(tp.topic, tp.partition) for tp in assigned])


def _unavailable(error: Exception, doing: str, bootstrap: str) -> BrokerUnavailableError:
    return BrokerUnavailableError(
        f"Kafka at {bootstrap} did not answer while {doing} ({type(error).__name__}: {error}); "
        "check that the broker runs (`ledger stack status`)"
    )


def _fetch_when_asked(consumer: KafkaConsumer, max_records: int) -> None:
    """Make `consumer` fetch when its caller polls for more, not as it hands out a batch.

    kafka-python 3 sends the next fetch the moment a poll hands out what it had buffered, so
    it is ready when the caller asks again. The broker answers that fetch as soon as it holds
    one new record (`fetch_min_bytes` 1), a few milliseconds after the poll; what arrives
    while the caller works on its batch then waits for the fetch after that, handed out a
    whole batch later. A worker that fell into this rhythm (it does after any poll that
    found records already buffered: the end of a burst, a batch over `max_records`) handed
    out batches whose newest record was already one batch time old: the intake's hop of
    `ledger bench latency` was 85-90 ms p50 in those runs against 50-60 ms in the others
    (its batches took 25-30 ms; `docs/performance.md`). Here a poll that hands out fewer
    records than `max_records` (the caller has caught up) sends no fetch; the next poll
    sends one and the broker answers at once with all that arrived meanwhile. A poll that
    hands out a full batch still fetches ahead: with a backlog, throughput is what counts.

    Done on the consumer's own fetcher (`fetched_records` and `send_fetches`, the two calls
    its `fetch_records` makes); a kafka-python whose fetcher lacks them is left as it is.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    drain = getattr(fetcher, "fetched_records", None)
    send = getattr(fetcher, "send_fetches", None)
    if fetcher is None or drain is None or send is None:
        log.warning("broker.fetch_ahead_kept", reason="kafka-python's fetcher is not as expected")
        return
    caught_up = [False]

    def fetched_records(*args: Any, **kwargs: Any) -> Any:
        records, partial = drain(*args, **kwargs)
        count = sum(len(batch) for batch in records.values())
        caught_up[0] = 0 < count < max_records and not partial
        return records, partial

    def send_fetches() -> Any:
        if caught_up[0]:
            caught_up[0] = False
            return []
        return send()

    fetcher.fetched_records = fetched_records
    fetcher.send_fetches = send_fetches


class Consumer:
    """A consumer-group member that reads records in batches and commits offsets explicitly."""

    def __init__(
        self,
        bootstrap: str,
        group_id: str | None,
        client_id: str,
        max_poll_records: int = 500,
        *,
        encoded_headers: bool = False,
    ) -> None:
        """`encoded_headers`: the records' headers come as `kafka_records.EncodedHeaders`, for a
        caller that reads them with `by_name()` (the projection worker: it is faster)."""
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.client_id = client_id
        self.encoded_headers = encoded_headers
        self._uncommitted: dict[tuple[str, int], int] = {}
        self._committed_at = 0.0
        kafka_records.install()
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=group_id,
                client_id=client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=max_poll_records,
                session_timeout_ms=10_000,
                heartbeat_interval_ms=3_000,
                max_poll_interval_ms=300_000,
                request_timeout_ms=30_000,
                reconnect_backoff_max_ms=2_000,
                metadata_max_age_ms=30_000,
            )
        except KafkaError as error:
            raise _unavailable(error, "connecting a consumer", bootstrap) from error
        _fetch_when_asked(self._consumer, max_poll_records)

    def subscribe(
        self, topics: Sequence[str], on_assigned: PartitionsCallback, on_revoked: PartitionsCallback
    ) -> None:
        """Join the group for `topics`, once their partitions are known to this client.

        A group leader that does not yet know a topic's partitions assigns none of them and
        only notices its mistake at the next metadata refresh, minutes later; so wait first.
        """
        try:
            for topic in topics:
                if not self._consumer.partitions_for_topic(topic):
                    raise BrokerUnavailableError(
                        f"topic {topic!r} does not exist on {self.bootstrap}: "
                        "run `ledger stack up` to create the ledger's topics"
                    )
        except KafkaError as error:
            raise _unavailable(error, "reading topic metadata", self.bootstrap) from error
        self._consumer.subscribe(list(topics), listener=_Listener(on_assigned, on_revoked))

    #: While held, the consumer stays in its group but hands out no records (see `hold`).
    held = False

    def hold(self) -> None:
        """Stay in the group but hand out nothing until `release`: benchmarks let every worker
        process join first, so they measure work rather than the group forming."""
        self.held = True

    def release(self) -> None:
        self.held = False
        self._consumer.resume(*self._consumer.assignment())

    def poll(self, timeout_ms: int) -> list[Record]:
        """The next records of the assigned partitions, oldest first within each partition.

        While the member is joining its group the poll waits up to `JOIN_WAIT_MS`, however
        short `timeout_ms` is: kafka-python 3.0.12 throws away a join that completes after the
        poll that started it has timed out, and joins again (`BaseCoordinator.join_group_async`
        starts a new JoinGroup when it finds the last one done instead of taking its result).
        With 200 ms polls on a loaded machine, or a broker holding the JoinGroup while a dead
        member's session runs out, every join outlived its poll: the member re-joined for ever,
        believing itself assigned, fetching nothing, saying nothing (`ledger.liveness`).
        """
        if self.group_id is not None and not self.group_is_stable():
            timeout_ms = max(timeout_ms, JOIN_WAIT_MS)
        try:
            self._commit_if_due()
            if self.held:
                return self._poll_held(timeout_ms)
            with kafka_records.encoded_headers() if self.encoded_headers else nullcontext():
                batches = self._consumer.poll(timeout_ms=timeout_ms)
        except KafkaError as error:
            raise _unavailable(error, "polling", self.bootstrap) from error
        records: list[Record] = []
        for batch in batches.values():
            # Positional arguments: keywords made building a named tuple measurably slower.
            # `is None`, not `or`: encoded headers are an empty list to all but their reader.
            records.extend(
                Record(
                    r.topic,
                    r.partition,
                    r.offset,
                    r.key,
                    r.value,
                    [] if r.headers is None else r.headers,
                    r.timestamp,
                )
                for r in batch
            )
        return records

    def _poll_held(self, timeout_ms: int) -> list[Record]:
        # Partitions assigned by a rebalance inside this very poll are not paused yet: put
        # back anything they returned, so it is handed out after `release`.
        self._consumer.pause(*self._consumer.assignment())
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        for tp, batch in batches.items():
            if batch:
                self._consumer.seek(tp, batch[0].offset)
        self._consumer.pause(*self._consumer.assignment())
        return []

    def assign_all(self, topic: str, only: Sequence[int] | None = None) -> list[tuple[str, int]]:
        """Read every partition of `topic` (or those in `only`) from its beginning, outside
        any group (a rebuild, an audit)."""
        try:
            found = self._consumer.partitions_for_topic(topic)
        except KafkaError as error:
            raise _unavailable(error, "reading topic metadata", self.bootstrap) from error
        if not found:
            raise BrokerUnavailableError(f"topic {topic!r} does not exist on {self.bootstrap}")
        partitions = [TopicPartition(topic, p) for p in sorted(found) if only is None or p in only]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        return [(tp.topic, tp.partition) for tp in partitions]

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self._consumer.seek(TopicPartition(topic, partition), offset)

    def seek_to_beginning(self, topic: str, partition: int) -> None:
        self._consumer.seek_to_beginning(TopicPartition(topic, partition))

    def assignment(self) -> list[tuple[str, int]]:
        return sorted((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        """Record progress in Kafka too, for lag tools; the truth is kept in PostgreSQL.

        Every worker seeks to the positions it stored in PostgreSQL, so Kafka's copy only has
        to catch up eventually: it is sent without waiting for the answer (waiting cost a
        broker round trip per batch, 2-7 ms on this machine, on the path of every message),
        and at most once every `COMMIT_EVERY_S` (the latest offset of each partition since the
        last one; the next `poll` sends what is due, so an idle worker's copy catches up
        too). At a steady load a worker makes 30-45 batches a second: a commit with each was
        as many requests for the broker to write to its offsets topic, and work for this
        client's network thread, all on the machine the pipeline runs on (measured:
        `docs/performance.md`). A commit that fails is logged when its answer arrives; the
        next one carries the same partitions further."""
        self._uncommitted.update(next_offsets)
        self._commit_if_due()

    def _commit_if_due(self) -> None:
        if not self._uncommitted or time.monotonic() - self._committed_at < COMMIT_EVERY_S:
            return
        offsets, self._uncommitted = self._uncommitted, {}
        self._committed_at = time.monotonic()
        try:
            self._consumer.commit_async(
                {
                    TopicPartition(t, p): OffsetAndMetadata(offset, "", -1)
                    for (t, p), offset in offsets.items()
                },
                callback=self._committed,
            )
        except KafkaError as error:  # never worth stopping for: it is only Kafka's copy
            self._committed(offsets, error)

    def _committed(self, _offsets: object, response: object) -> None:
        if isinstance(response, Exception):
            log.warning(
                "worker.offset_commit_failed",
                client=self.client_id,
                error=f"{type(response).__name__}: {response}"[:300],
            )

    def positions(self) -> dict[tuple[str, int], int]:
        """The next offset this consumer will fetch, per assigned partition whose position is
        known, read from the client's own state: no request, so it answers even while the
        client cannot reach its group coordinator (`ledger.liveness`)."""
        found: dict[tuple[str, int], int] = {}
        subscription = self._consumer._subscription
        for tp in list(subscription.assignment):
            state = subscription.assignment.get(tp)
            position = getattr(state, "_position", None) if state is not None else None
            offset = getattr(position, "offset", None)
            if isinstance(offset, int):
                found[(tp.topic, tp.partition)] = offset
        return found

    def lag(self, partitions: Sequence[tuple[str, int]]) -> int:
        """Records waiting in `partitions` beyond this consumer's positions (one request)."""
        ends = self.end_offsets(partitions)
        known = self.positions()
        return sum(max(0, end - known.get(tp, 0)) for tp, end in ends.items())

    def group_is_stable(self) -> bool:
        """Whether the client believes itself a member of a stable group."""
        stable = getattr(self._consumer._coordinator, "stable", None)
        return bool(stable()) if callable(stable) else True

    def group_state(self) -> str:
        """What the client believes of its membership, in words, for a stall's log line:
        member state, the coordinator it knows (if any) and whether a lookup is pending."""
        coordinator = self._consumer._coordinator
        state = getattr(coordinator, "state", None)
        name = getattr(state, "name", str(state)).lower()
        known = coordinator.coordinator_id
        lookup = getattr(coordinator, "_find_coordinator_future", None)
        pending = " (coordinator lookup pending)" if lookup is not None else ""
        return f"{name}, coordinator {known if known is not None else 'unknown'}{pending}"

    def end_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        try:
            ends = self._consumer.end_offsets(
                [TopicPartition(t, p) for t, p in partitions], timeout_ms=5_000
            )
        except KafkaError as error:
            raise _unavailable(error, "reading end offsets", self.bootstrap) from error
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    def close(self) -> None:
        """Leave the group (best effort) and close; never raises: a consumer is closed to
        recover from an outage or a stall, when leaving politely may well fail."""
        try:
            self._consumer.close(autocommit=False, timeout_ms=5_000)
        except KafkaError:
            self._consumer.close(autocommit=False, timeout_ms=0)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a keyed record goes to, as Kafka's Java client, kafka-python and the
    ledger's own producer (`murmur2_random`) place it: murmur2 of the key, made positive,
    modulo the partition count. Where a learner lives depends on it (`ledger.sharding`)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def _sendable(headers: Headers) -> list[tuple[str, bytes]]:
    """Headers as the ledger sends them: a null value (which the record format allows, and
    other clients send) goes as empty, as it always has (kafka-python's producer, used before,
    refused nulls): what `ledger rejections retry` does with a message that carried one."""
    if all(v is not None for _, v in headers):
        return headers  # type: ignore[return-value]
    return [(k, b"" if v is None else v) for k, v in headers]


def produce(
    producer: confluent_kafka.Producer,
    record: OutRecord,
    report: Any,
    deadline: float = math.inf,
) -> None:
    """Queue `record` on a librdkafka producer (`report(error, message)` on its answer); while
    its queue is full, let it send and try again, until `deadline` (`time.monotonic()`)."""
    headers: list[tuple[str, str | bytes | None]] = list(_sendable(record.headers))
    while True:
        try:
            producer.produce(
                record.topic,
                value=record.value,
                key=record.key,
                headers=headers,
                on_delivery=report,
                # -1: "unassigned", placed by the partitioner (murmur2 of the key)
                partition=-1 if record.partition is None else record.partition,
            )
        except BufferError:
            if time.monotonic() >= deadline:
                raise
            producer.poll(0.05)
        else:
            return


class Producer:
    """An idempotent producer (acks=all): a retried send never duplicates within a session,
    and records of one key keep their order.

    On librdkafka (`confluent-kafka`), not kafka-python: the relay publishes every event, and
    kafka-python's producer cost it about 165 µs of CPU a record (25 ms for a page of 140),
    librdkafka 7-9 µs (3 ms), measured alone on this machine; on two shared cores that CPU is
    the latency of everything else. Keys go where kafka-python and the Java client put them
    (murmur2: `murmur2_random`), so a learner's events stay on their partition across the
    change (`tests/integration/test_producer.py`). Its log lines go to the `kafka` logger,
    as kafka-python's did (`ledger.logs`).
    """

    def __init__(self, bootstrap: str, client_id: str, delivery_timeout_ms: int = 30_000) -> None:
        self.bootstrap = bootstrap
        try:
            self._producer = confluent_kafka.Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "client.id": client_id,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "message.timeout.ms": delivery_timeout_ms,
                    "request.timeout.ms": min(10_000, delivery_timeout_ms - 1),
                    "reconnect.backoff.max.ms": 2_000,
                    "partitioner": "murmur2_random",
                },
                logger=logging.getLogger("kafka.librdkafka"),
            )
        except confluent_kafka.KafkaException as error:
            raise _unavailable(error, "connecting a producer", bootstrap) from error

    def send_all(self, records: Sequence[OutRecord], timeout_s: float = 30.0) -> None:
        """Send the records in order and wait until the broker has acknowledged every one."""
        failures: list[Any] = []
        reported = 0

        def report(error: Any, _message: Any) -> None:
            nonlocal reported
            reported += 1
            if error is not None:
                failures.append(error)

        deadline = time.monotonic() + timeout_s
        try:
            for record in records:
                produce(self._producer, record, report, deadline)
            # Counted per call, not by the queue's length: another thread's records may share it.
            while reported < len(records) and time.monotonic() < deadline:
                self._producer.flush(min(1.0, max(deadline - time.monotonic(), 0.0)))
        except (confluent_kafka.KafkaException, BufferError) as error:
            raise _unavailable(error, "publishing", self.bootstrap) from error
        if failures:
            raise _unavailable(
                confluent_kafka.KafkaException(failures[0]), "publishing", self.bootstrap
            )
        if reported < len(records):
            unacknowledged = TimeoutError(
                f"{len(records) - reported} records unacknowledged after {timeout_s} s"
            )
            raise _unavailable(unacknowledged, "publishing", self.bootstrap)

    def close(self) -> None:
        """Close, giving unsent records 5 s, then dropping them (the caller sends them again);
        never raises: the relay closes its producer to recover from a broker outage, when
        records are unsent by definition."""
        try:
            if self._producer.flush(5):
                self._producer.purge()
                self._producer.flush(0)
        except Exception as error:  # noqa: BLE001 - nothing more to do: the producer is dropped
            log.warning("producer.not_closed", error=str(error)[:300])


def _admin(bootstrap: str, timeout_ms: int) -> KafkaAdminClient:
    """An admin client of the ledger's, or `BrokerUnavailableError` saying the broker is away."""
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="ledger-admin", request_timeout_ms=timeout_ms
        )
    except KafkaError as error:
        raise _unavailable(error, "connecting the admin client", bootstrap) from error


def ensure_topics(bootstrap: str, topics: dict[str, int], configs: dict[str, str]) -> list[str]:
    """Create the topics that do not exist yet; return the names it created.

    Replicated as the cluster is configured to (`default.replication.factor`, and its
    `min.insync.replicas` for writes): one copy on the single local node, three on
    `ledger stack up --brokers 3` (two in sync), whatever an operator's own cluster sets. A
    cluster with too few nodes up to place every copy refuses the topic, rather than the
    ledger making one that is less safe than the others."""
    admin = _admin(bootstrap, 15_000)
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        for name, partitions in topics.items():
            if name in existing:
                continue
            try:
                admin.create_topics(
                    {
                        name: {
                            "num_partitions": partitions,
                            "replication_factor": -1,  # the cluster's default
                            "configs": dict(configs),
                        }
                    },
                    wait_for_metadata=True,
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    except KafkaError as error:
        raise _unavailable(error, "creating topics", bootstrap) from error
    finally:
        admin.close()
    return created


def delete_topics_under(bootstrap: str, prefix: str) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a benchmark's own, after its run);
    return their names. A broker holding thousands of partitions that nobody reads any more
    still keeps, checks and checkpoints each of them."""
    if not prefix:
        raise ValueError("deleting topics needs a prefix of their own")
    admin = _admin(bootstrap, 30_000)
    try:
        names = sorted(t for t in admin.list_topics() if t.startswith(prefix))
        if names:
            admin.delete_topics(names, timeout_ms=30_000)
    except KafkaError as error:
        raise _unavailable(error, "deleting topics", bootstrap) from error
    finally:
        admin.close()
    return names


def describe_topics(bootstrap: str, names: Sequence[str]) -> dict[str, int]:
    """Partition count of each named topic that exists."""
    admin = _admin(bootstrap, 10_000)
    try:
        existing = set(admin.list_topics())
        wanted = [n for n in names if n in existing]
        described = admin.describe_topics(wanted) if wanted else []
    except KafkaError as error:
        raise _unavailable(error, "describing topics", bootstrap) from error
    finally:
        admin.close()
    return {t["name"]: len(t["partitions"]) for t in described}


@dataclass(frozen=True)
class Replication:
    """How safely a topic is kept: the copies of its least replicated partition, the fewest
    of them in sync now, and how many must have a write before it is acknowledged."""

    replicas: int
    in_sync: int
    min_in_sync: int


def replication(bootstrap: str, names: Sequence[str]) -> dict[str, Replication]:
    """`Replication` of each named topic (what `ledger stack status` and the chaos runs show)."""
    from confluent_kafka import admin as rdkafka_admin  # noqa: PLC0415

    admin = rdkafka_admin.AdminClient(
        {"bootstrap.servers": bootstrap}, logger=logging.getLogger("kafka.librdkafka")
    )
    config_resource: Any = getattr(rdkafka_admin, "ConfigResource")  # noqa: B009 - not exported in its stubs
    try:
        metadata = admin.list_topics(timeout=10)
        found = [n for n in names if n in metadata.topics]
        configs = admin.describe_configs([config_resource("topic", n) for n in found])
        minimums = {
            resource.name: int(future.result(timeout=10)["min.insync.replicas"].value)
            for resource, future in configs.items()
        }
    except confluent_kafka.KafkaException as error:
        raise _unavailable(error, "describing topics", bootstrap) from error
    described = {}
    for name in found:
        partitions = metadata.topics[name].partitions.values()
        described[name] = Replication(
            min(len(p.replicas) for p in partitions),
            min(len(p.isrs) for p in partitions),
            minimums[name],
        )
    return described


def partition_leader(bootstrap: str, topic: str, partition: int) -> int | None:
    """The node id leading a partition (None if it has no leader now): `__consumer_offsets`
    partition 0 is the group coordinator of every group on the local Kafka."""
    from confluent_kafka import admin as rdkafka_admin  # noqa: PLC0415

    admin = rdkafka_admin.AdminClient(
        {"bootstrap.servers": bootstrap}, logger=logging.getLogger("kafka.librdkafka")
    )
    try:
        metadata = admin.list_topics(topic=topic, timeout=10)
    except confluent_kafka.KafkaException as error:
        raise _unavailable(error, "reading topic metadata", bootstrap) from error
    found = metadata.topics.get(topic)
    leader = found.partitions[partition].leader if found and partition in found.partitions else -1
    return leader if leader >= 0 else None


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The next offset to be written on each partition of `topic` (its current end)."""
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=10_000,
        )
    except KafkaError as error:
        raise _unavailable(error, "connecting a consumer", bootstrap) from error
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets(
            [TopicPartition(topic, p) for p in partitions], timeout_ms=10_000
        )
    except KafkaError as error:
        raise _unavailable(error, "reading end offsets", bootstrap) from error
    finally:
        consumer.close()
    return {tp.partition: offset for tp, offset in ends.items()}


def warm_up_groups(bootstrap: str, topic: str, timeout_s: float = 60.0) -> bool:
    """Join and leave a throwaway consumer group once, so the broker's group coordinator (and
    its `__consumer_offsets` topic) exists before the workers need it.

    On a freshly formatted broker the first group join waits for that topic to be created and
    led; a worker started at that moment can sit for many seconds before its first record.
    Returns True once a member was assigned partitions.
    """
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id="ledger-warm-up",
            enable_auto_commit=False,
            request_timeout_ms=15_000,
        )
    except KafkaError as error:
        raise _unavailable(error, "connecting a consumer", bootstrap) from error
    assigned = False
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while not assigned and time.monotonic() < deadline:
            consumer.poll(timeout_ms=500)
            assigned = bool(consumer.assignment())
    except KafkaError as error:
        raise _unavailable(error, "joining a consumer group", bootstrap) from error
    finally:
        consumer.close()
    return assigned


def reachable(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """Whether any of the bootstrap servers accepts a connection now: a broker opens its client
    port only once it is ready to serve, so this is a sound readiness check (and costs one TCP
    handshake, not a client's metadata round)."""
    import socket  # noqa: PLC0415 - only readiness checks need it

    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False
