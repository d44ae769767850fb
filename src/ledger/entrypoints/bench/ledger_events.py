"""Events as the relay publishes them, made without the intake and the relay.

The benchmarks of the read side get realistic events this way: the inbound messages are decided
by the real handlers on an in-memory event store, and every stored event becomes the record the
relay would publish. What is measured is therefore fed exactly what production feeds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from commands.cloudevents import RejectionError, parse
from commands.handlers import handle
from ledger.application import Ledger
from ledger.broker import OutRecord, Producer
from ledger.errors import LedgerError
from ledger.outbound import relayed_in_order, subject_of, to_record
from ledger.relay import PAGE

#: Messages decided per in-memory session; the intake decides batches of this order too.
SESSION_BATCH = 500
#: Records per transaction when filling read models, and rows per raw upsert: the projection
#: worker's default batch, so the baseline writes the way the worker does.
WORKER_BATCH = 2000


def _page_notifications(ledger: Ledger) -> list[Any]:
    """Every stored event as stored, in notification order (paged, as the relay reads)."""
    found: list[Any] = []
    start = 1
    while True:
        page = ledger.recorder.select_notifications(start=start, limit=10_000)
        if not page:
            return found
        found.extend(page)
        start = page[-1].id + 1


def decided_events(
    inbound: Sequence[OutRecord], advance: Callable[[int], None], *, stored: bool = False
) -> list[Any]:
    """The events the intake would have made of `inbound`, in notification order: each message
    decided by the real handlers, in sessions of a few hundred as the intake decides them, on
    an in-memory event store; a message the intake would reject makes no event and is skipped.
    Domain events, or with `stored` the notifications as the event store keeps them (id,
    originator, version, topic, state bytes)."""
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        for start in range(0, len(inbound), SESSION_BATCH):
            chunk = inbound[start : start + SESSION_BATCH]
            with ledger.session() as session:
                for record in chunk:
                    try:
                        handle(session, parse(record.value, record.headers))
                    except (RejectionError, LedgerError):
                        continue
            advance(len(chunk))
        notifications = _page_notifications(ledger)
        if stored:
            return notifications
        return [ledger.mapper.to_domain_event(n) for n in notifications]
    finally:
        ledger.close()


def ledger_event_records(
    inbound: Sequence[OutRecord], topic: str, advance: Callable[[int], None]
) -> list[OutRecord]:
    """The records the relay would publish to `topic` once the intake had decided `inbound`
    (`decided_events`): each stored event becomes `outbound.to_record`, under the subject the
    relay gives it, the natural id named by its aggregate's first event."""
    events = decided_events(inbound, advance)
    subjects: dict[UUID, str] = {}
    records = []
    for event in events:
        if event.originator_version == 1:
            subjects[event.originator_id] = subject_of(event)
        records.append(to_record(topic, event, subjects[event.originator_id]))
    return relayed_in_order(records, PAGE)


def messages_for(events: int, learners: int) -> int:
    """Inbound messages of `bench_messages` that make about `events` events for `learners`.

    In that mix a learner's first message also registers them (two events) and every other
    message makes one event, so a learner with m messages has about m + 1 events, and more
    for the courses they are certified in (about one in four of their messages).
    """
    per_learner = max(3, round(events / learners) - 1)
    return learners * per_learner


def publish(bootstrap: str, records: Sequence[OutRecord]) -> None:
    producer = Producer(bootstrap, client_id="ledger-bench")
    try:
        producer.send_all(records, timeout_s=300)
    finally:
        producer.close()
