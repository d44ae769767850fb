"""`ledger run xapi`: `ledger.events` followed into an LRS as it grows, in the consumer group
`ledger-xapi`; the next offset of each partition is recorded once the LRS has taken what came
before it (`positions`), and is where it resumes after a restart or an outage."""

from __future__ import annotations

from typing import Any

import psycopg

from bridges.xapi import positions
from bridges.xapi.lrs import Lrs
from bridges.xapi.statements import KINDS, Statements
from ledger.broker import Consumer
from ledger.errors import ConfigurationError, LedgerError
from ledger.heartbeats import Progress
from ledger.liveness import ConsumerWatch, Stall
from ledger.logs import get_logger
from ledger.settings import Services, Settings
from projections.applying import read_batch

log = get_logger(__name__)


class XapiFollower:
    """Follows `ledger.events` into the LRS at `LEDGER_XAPI_URL`."""

    name = "xapi"

    def __init__(self, settings: Settings, services: Services) -> None:
        if not settings.xapi_url:
            raise ConfigurationError(
                "`ledger run xapi` needs an LRS: set LEDGER_XAPI_URL (its xAPI base, e.g. "
                "https://lrs.example.org/xAPI) and LEDGER_XAPI_USERNAME / LEDGER_XAPI_PASSWORD"
            )
        self.settings = settings
        self.services = services
        self.destination = settings.xapi_url
        self.topic = settings.events_topic
        password = settings.xapi_password.get_secret_value() if settings.xapi_password else None
        self.lrs = Lrs(settings.xapi_url, settings.xapi_username, password)
        self.statements = Statements(settings.issuer_url)
        self._consumer: Consumer | None = None
        self._db: psycopg.Connection[Any] | None = None
        self._needs_seek = True
        self.watch = ConsumerWatch()

    def _conn(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(self.services.database_url, autocommit=True)
            positions.create_table(self._db)
        return self._db

    def consumer(self) -> Consumer:
        if self._consumer is None:
            consumer = Consumer(
                self.services.kafka_bootstrap,
                self.settings.group_id("xapi"),
                "ledger-xapi",
                2000,
                encoded_headers=True,
            )
            consumer.subscribe([self.topic], self._seek_to_stored, lambda _revoked: None)
            self._consumer = consumer
        return self._consumer

    def _seek_to_stored(self, partitions: list[tuple[str, int]]) -> None:
        consumer = self._consumer
        if consumer is None or not partitions:
            return
        stored = positions.load(self._conn(), self.destination, self.topic)
        for topic, partition in partitions:
            consumer.seek(topic, partition, stored.get(partition, 0))
        self._needs_seek = False

    def recover(self) -> None:
        self._needs_seek = True
        if self._db is not None:
            self._db.close()
            self._db = None
        self._conn()

    def progress(self) -> Progress:
        return Progress(self.watch.last_progress_wall, self.watch.lag, self.watch.rejoins)

    def _rejoin(self, stall: Stall) -> None:
        log.warning("worker.stalled", worker=self.name, action="rejoin", **stall.as_fields())
        self.close_consumer()
        self._needs_seek = True
        self.watch.restart()

    def close_consumer(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def close(self) -> None:
        self.close_consumer()
        self.lrs.close()
        if self._db is not None:
            self._db.close()
            self._db = None

    def step(self) -> bool:
        consumer = self.consumer()
        if self._needs_seek:
            self._seek_to_stored(consumer.assignment())
        records = consumer.poll(timeout_ms=500)
        stall = self.watch.after_poll(consumer, len(records))
        if stall is not None:
            self._rejoin(stall)
            return True
        if not records:
            return False
        batch = read_batch(records)
        chosen = [
            made
            for _, event in batch.events
            if event is not None and event.kind in KINDS
            if (made := self.statements.of(event)) is not None
        ]
        sent = self.lrs.send(chosen)
        positions.save(self._conn(), self.destination, batch.next_offsets)
        log.info(
            "xapi.sent",
            records=len(records),
            statements=len(chosen),
            stored=sent.stored,
            known=sent.known,
            conflicts=len(sent.conflicts),
        )
        try:
            consumer.commit(batch.next_offsets)
        except LedgerError as error:
            log.warning("xapi.offset_commit_failed", error=str(error))
        return True
