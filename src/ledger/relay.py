"""The relay: the event store is the outbox, and this is the one thing that publishes it.

It reads the notification log (every stored event, in commit order) after its stored position,
publishes each event to `ledger.events` with an idempotent producer, waits for the broker's
acknowledgement, and only then stores how far it got. A crash between the two republishes a few
events under new offsets; consumers recognise them by event identity (aggregate id, version), and
projections by the two numbers each record carries: its notification id, and the stored position
the page was sent from (`outbound.Relayed`; why it suffices: `projections.positions`).
Notification ids have gaps (a rolled-back save still consumes one), so it pages by "greater than
the last id seen", never by counting. Rejected intake messages are relayed the same way to
`ledger.rejections`, from the rejections table.

Each aggregate's events go to the partition its subject (learner or specialization id) has on
`ledger.intake` (`Layout.events_partition`), not where its key would hash: with the event store
in shards, each shard has its relay (`docs/sharding.md`), and so every partition of
`ledger.events` carries one shard's notification log and the projections' dedupe stays exact;
of the catalog, which every shard keeps, only a specialization's home shard publishes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from uuid import UUID

import psycopg
from psycopg.sql import SQL, Identifier

from ledger.application import Ledger
from ledger.broker import OutRecord, Producer
from ledger.domain import Specialization
from ledger.heartbeats import Progress
from ledger.logs import get_logger
from ledger.outbound import Relayed, subject_of, to_record
from ledger.settings import Settings
from ledger.sharding import Layout
from ledger.store import StoredRejection

EVENTS_STREAM = "events"
REJECTIONS_STREAM = "rejections"

log = get_logger(__name__)

#: Events (and rejections) read and published at a time; each page is acknowledged before the
#: relay stores its position and reads the next.
PAGE = 1000


#: What Kafka Connect's dead-letter queues say of every record they hold: operators' tools read
#: these names, so a rejection says them too, beside the ledger's own `ledger_*` headers.
CONNECT_ERRORS = "__connect.errors."
#: The exception a rejection stands for, named as Connect names one (the reason code says
#: which rule or check refused the message: `ledger_reason`, and the exception message).
REJECTION_CLASS = "commands.cloudevents.RejectionError"


def rejection_record(settings: Settings, rejection: StoredRejection) -> OutRecord:
    """The original bytes and headers, plus the reason, as one record on `ledger.rejections`:
    in the ledger's words (`ledger_*`) and in Kafka Connect's (`__connect.errors.*`), the
    "connector" being the intake or, for what came from elsewhere, a bridge."""
    from_intake = rejection.topic == settings.intake_topic
    connect = {
        "topic": rejection.topic,
        "partition": str(rejection.partition),
        "offset": str(rejection.offset),
        "connector.name": "ledger-intake" if from_intake else "ledger-bridge",
        "task.id": "0",
        "exception.class.name": REJECTION_CLASS,
        "exception.message": f"{rejection.reason}: {rejection.message}",
    }
    headers = [
        *rejection.headers,
        ("ledger_rejection_id", str(rejection.rejection_id).encode()),
        ("ledger_reason", rejection.reason.encode()),
        ("ledger_message", rejection.message.encode()),
        ("ledger_origin", f"{rejection.topic}/{rejection.partition}/{rejection.offset}".encode()),
        *((CONNECT_ERRORS + name, value.encode()) for name, value in connect.items()),
    ]
    return OutRecord(
        topic=settings.rejections_topic, key=rejection.key, value=rejection.value, headers=headers
    )


class Relay:
    """Publishes stored events and rejections to Kafka, in order, at least once."""

    name = "relay"
    #: The longest it sleeps with nothing to publish. The event store's NOTIFY, sent by every
    #: transaction that stores events or rejections, wakes it at once (`idle`); this only
    #: bounds how late it looks again if a notification is missed.
    idle_wait_s = 0.5

    def __init__(
        self,
        ledger: Ledger,
        settings: Settings,
        bootstrap: str,
        batch_size: int = PAGE,
        *,
        layout: Layout | None = None,
        shard: int = 0,
        reopen: Callable[[], Ledger] | None = None,
    ) -> None:
        """`ledger` is shard `shard` of the event store laid out as `layout` (default: the
        only one); `reopen()` opens it afresh after an outage of its server (the pool of the
        old one takes tens of seconds to trust the server again), and the relay then closes
        the one it had: it must be the relay's own."""
        self.ledger = ledger
        self.recorder = ledger.ledger_recorder
        self.settings = settings
        self.bootstrap = bootstrap
        self.batch_size = batch_size
        self.layout = layout or Layout(1, settings.partitions)
        self.shard = shard
        self.reopen = reopen
        if shard:
            self.name = f"relay-{shard + 1}"
        self._producer: Producer | None = None
        self._subjects: dict[UUID, str] = {}
        self._events_position: int | None = None
        self._rejections_position: int | None = None
        self._last_progress = time.time()
        self._listener: psycopg.Connection[Any] | None = None

    def idle(self, timeout_s: float) -> None:
        """Wait for the event store to say it stored something, at most `timeout_s`.

        Polling the notification log every 50 ms added 25 ms to every event's way to
        `ledger.events` on average, and still cost a query every 50 ms with nothing to do.
        Notifications sent while the relay was publishing are waiting on the connection, so
        none is lost between its last look and this wait; the ones it did not need only
        cost one more look.
        """
        listener = self._listener_or_connect()
        for _ in listener.notifies(timeout=timeout_s, stop_after=1):
            pass
        for _ in listener.notifies(timeout=0.0):  # the rest, already here: one look is enough
            pass

    def _listener_or_connect(self) -> psycopg.Connection[Any]:
        if self._listener is None:
            pool = self.recorder.datastore.pool  # connect as the event store does
            given = pool.kwargs() if callable(pool.kwargs) else pool.kwargs
            kwargs = {k: v for k, v in (given or {}).items() if k != "row_factory"}
            conninfo = pool.conninfo() if callable(pool.conninfo) else pool.conninfo
            listener = psycopg.connect(conninfo, autocommit=True, connect_timeout=5, **kwargs)
            listener.execute(SQL("LISTEN {}").format(Identifier(self.recorder.channel_name)))
            self._listener = listener
        return self._listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(psycopg.Error):
                self._listener.close()
            self._listener = None

    def _producer_or_connect(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self.bootstrap, client_id="ledger-relay")
        return self._producer

    def _subject(self, aggregate_id: UUID, event: Any) -> str:
        subject = self._subjects.get(aggregate_id)
        if subject is None:
            first = (
                event
                if event.originator_version == 1
                else next(iter(self.ledger.events.get(aggregate_id, lte=1)))
            )
            subject = subject_of(first)
            self._subjects[aggregate_id] = subject
        return subject

    def _elsewhere(self, event: Any, subject: str) -> bool:
        """Whether another shard publishes this event: a catalog event whose specialization's
        home is another shard (every shard keeps the catalog; one publishes it)."""
        return isinstance(event, Specialization.Event) and self.layout.shard_of(subject) != (
            self.shard
        )

    def step(self) -> bool:
        """Publish the next page of stored events and of rejections: one read of both, one
        send, one write of both positions (each a single wait: `LedgerRecorder.relay_pages`)."""
        started = time.perf_counter()
        if self._events_position is None or self._rejections_position is None:
            self._events_position = self.recorder.relay_position(EVENTS_STREAM)
            self._rejections_position = self.recorder.relay_position(REJECTIONS_STREAM)
        notifications, rejections = self.recorder.relay_pages(
            self._events_position, self._rejections_position, self.batch_size
        )
        records = []
        sharded = self.layout.shards > 1
        for notification in notifications:
            event = self.ledger.mapper.to_domain_event(notification)
            aggregate_id = UUID(str(notification.originator_id))
            subject = self._subject(aggregate_id, event)
            if sharded and self._elsewhere(event, subject):
                continue
            relayed = Relayed(notification.id, self._events_position)
            record = to_record(self.settings.events_topic, event, subject, relayed)
            records.append(replace(record, partition=self.layout.events_partition(subject)))
        records.extend(rejection_record(self.settings, r) for r in rejections)
        # Published, or found nothing to publish: either way it is keeping up.
        self._last_progress = time.time()
        if not records and not notifications:
            return False
        if records:
            self._producer_or_connect().send_all(records)
        positions = {}
        if notifications:
            positions[EVENTS_STREAM] = notifications[-1].id
        if rejections:
            positions[REJECTIONS_STREAM] = rejections[-1].rejection_id
        self.recorder.save_relay_positions(positions)
        seconds = round(time.perf_counter() - started, 4)
        if notifications:
            self._events_position = notifications[-1].id
            log.info(
                "relay.published",
                stream=EVENTS_STREAM,
                topic=self.settings.events_topic,
                count=len(notifications),
                first_id=notifications[0].id,
                last_id=notifications[-1].id,
                seconds=seconds,
            )
        if rejections:
            self._rejections_position = rejections[-1].rejection_id
            log.info(
                "relay.published",
                stream=REJECTIONS_STREAM,
                topic=self.settings.rejections_topic,
                count=len(rejections),
                last_id=rejections[-1].rejection_id,
                seconds=seconds,
            )
        return True

    def progress(self) -> Progress:
        return Progress(self._last_progress)

    def recover(self) -> None:
        # Re-read positions: what was sent before the outage but not recorded goes again.
        self._events_position = None
        self._rejections_position = None
        if self.reopen is not None:
            if not self.recorder.reachable():
                raise psycopg.OperationalError("the event store's server does not answer yet")
            stale, self.ledger = self.ledger, self.reopen()
            self.recorder = self.ledger.ledger_recorder
            stale.close()
        if self._producer is not None:
            self._producer.close()  # never raises, even with the broker away
            self._producer = None
        self._close_listener()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None
        self._close_listener()
