"""What the HTTP app talks to: PostgreSQL (a pool), Kafka (a producer) and the ledger
application, each opened on first use and closed on shutdown.

Opening on first use lets the API start, and answer `/healthz`, while PostgreSQL or Kafka are
still coming up; a request that needs one that is down gets a 503 saying which (`problems`).
Pooled connections are checked before they are lent, so after PostgreSQL restarts the API
finds it again by itself instead of failing once on every connection the restart broke.

While a service is away, a request should hear so at once, not after a client's own timeouts
(30 s for kafka-python's, `POOL_WAIT_S` for the pool): once PostgreSQL has failed to lend a
connection, requests wait only `DOWN_WAIT_S` until one is lent again; a request that needs
Kafka first checks that a broker accepts connections (`kafka`), which is refused at once when
none listens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from ledger.application import Ledger
from ledger.broker import BrokerUnavailableError, OutRecord, Producer, reachable
from ledger.entrypoints import bootstrap
from ledger.settings import Services, Settings

T = TypeVar("T")

#: How long a request waits for a pooled connection before answering 503.
POOL_WAIT_S = 3.0
#: ... and how long once PostgreSQL was found away, until a connection is lent again.
DOWN_WAIT_S = 0.3
#: How long `POST /v1/events` waits for the broker's acknowledgements before answering 503.
PUBLISH_WAIT_S = 10.0


class Lazy(Generic[T]):
    """A client opened on first use and closed on shutdown, once however many threads ask: the
    routes are plain functions that FastAPI runs in its thread pool, so two first requests can
    arrive together."""

    def __init__(self, open_: Callable[[], T], close: Callable[[T], None]) -> None:
        self._open = open_
        self._close = close
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._open()
            return self._value

    def close(self) -> None:
        with self._lock:
            if self._value is not None:
                self._close(self._value)
                self._value = None


def _close_all(ledgers: list[Ledger]) -> None:
    for ledger in ledgers:
        ledger.close()


class Clients:
    """The app's connections to the services, found through the composition root once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._postgres_away = False
        self.services: Lazy[Services] = Lazy(lambda: bootstrap.services(settings), _nothing)
        self.pool: Lazy[ConnectionPool] = Lazy(self._open_pool, ConnectionPool.close)
        self.producer: Lazy[Producer] = Lazy(
            lambda: Producer(self.services.get().kafka_bootstrap, "ledger-api"), Producer.close
        )
        self.ledger: Lazy[Ledger] = Lazy(
            lambda: bootstrap.open_ledger(self.services.get(), pre_ping=True), Ledger.close
        )
        #: The other shards of the event store (`docs/sharding.md`), opened when first asked.
        self.more_shards: Lazy[list[Ledger]] = Lazy(self._open_more_shards, _close_all)

    def _open_more_shards(self) -> list[Ledger]:
        found = self.services.get()
        return [
            bootstrap.open_ledger(found, pre_ping=True, shard=n)
            for n in range(1, len(found.shard_urls))
        ]

    def shards(self) -> list[Ledger]:
        """A `Ledger` on each shard of the event store, in order."""
        return [self.ledger.get(), *self.more_shards.get()]

    def learner_ledger(self, learner_id: str) -> Ledger:
        """The `Ledger` of the shard where `learner_id`'s history lives."""
        shard = bootstrap.layout(self.settings, self.services.get()).shard_of(learner_id)
        return self.ledger.get() if shard == 0 else self.more_shards.get()[shard - 1]

    def _open_pool(self) -> ConnectionPool:
        return ConnectionPool(
            self.services.get().database_url,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=8,
            timeout=POOL_WAIT_S,
            check=ConnectionPool.check_connection,
            open=True,
            name="ledger-api",
        )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit) for the length of a `with` block."""
        pool = self.pool.get()
        try:
            conn = pool.getconn(timeout=DOWN_WAIT_S if self._postgres_away else POOL_WAIT_S)
        except psycopg.OperationalError:  # PoolTimeout among them
            self._postgres_away = True
            raise
        self._postgres_away = False
        try:
            with conn:  # as the pool's own `connection()`: commit, or roll back on error
                yield conn
        finally:
            pool.putconn(conn)

    def kafka(self) -> str:
        """The Kafka bootstrap servers, once a broker accepts connections there;
        `BrokerUnavailableError` at once otherwise."""
        bootstrap = self.services.get().kafka_bootstrap
        if not reachable(bootstrap, timeout_s=1.0):
            raise BrokerUnavailableError(
                f"Kafka did not answer at {bootstrap}: check `ledger stack status`"
            )
        return bootstrap

    def publish(self, records: Sequence[OutRecord]) -> None:
        """Send `records` and wait for the broker's acknowledgement of each.

        A producer that failed is closed and dropped, and the next request makes a fresh one:
        after the broker was killed, kafka-python's idempotent producer can be left failing
        every send, though the broker is back (the relay recovers the same way)."""
        self.kafka()
        producer = self.producer.get()
        try:
            producer.send_all(records, timeout_s=PUBLISH_WAIT_S)
        except BrokerUnavailableError:
            self.producer.close()
            raise

    def close(self) -> None:
        self.more_shards.close()
        for client in (self.producer, self.pool, self.ledger):
            client.close()


def _nothing(_: object) -> None:
    return None
