"""`ledger shards double`: from N shards of the event store to 2N, losing and doubling nothing.

The procedure of `docs/sharding.md`, done with the pipeline stopped after it has caught up
(checked first: every shard has applied every partition of the intake and relayed all it
stored; every read model is at the end of `ledger.events`):

1. the new shards' tables, and their notification ids started above the highest id of the shard
   each takes partitions from: the read models have seen that shard's positions on those
   partitions, and the new shard's events must come after them;
2. from each old shard, the streams of the learners whose new shard is the new one (each
   event's stored row, bytes unchanged: ids, versions, times and hashes) and the whole catalog,
   in the old store's order; the intake positions and accepted (source, id) pairs; the new
   shard's relay position at its highest id (what it holds is on the topic already, published
   by the old shard on the same partitions: a learner keeps its `ledger.events` partition);
3. each moved stream compared row for row with the old one (the same rows: the same hash chain);
4. the moved streams deleted from the old shards, one transaction a shard.

Then `LEDGER_SHARDS` names the old shards, then the new ones, in order; `ledger audit verify`
over the new layout proves the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from ledger.application import Ledger
from ledger.broker import end_offsets
from ledger.domain import Specialization
from ledger.entrypoints import bootstrap
from ledger.errors import LedgerError
from ledger.outbound import subject_of
from ledger.relay import EVENTS_STREAM
from ledger.settings import Services, Settings
from ledger.sharding import Layout
from projections.status import projection_lag

_COPY_PAGE = 2000


@dataclass
class Doubled:
    """What the migration did, shard by shard."""

    old: int
    new: int
    #: Per new shard: learners moved to it, their events, catalog events copied.
    learners: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    catalog_events: list[int] = field(default_factory=list)
    #: The new `LEDGER_SHARDS`.
    shards: str = ""


def check_caught_up(settings: Settings, services: Services) -> None:
    """Raise unless the pipeline has handled everything (see the module docstring)."""
    ends = end_offsets(services.kafka_bootstrap, settings.intake_topic)
    for n, url in enumerate(services.shard_urls, 1):
        with psycopg.connect(url, autocommit=True) as conn:
            done: dict[int, int] = dict(
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
        behind = sum(max(0, end - done.get(p, 0)) for p, end in ends.items())
        if behind:
            raise LedgerError(
                f"shard {n} has {behind} intake messages to apply: let the pipeline catch up, "
                "then stop it, and migrate"
            )
        if row is None or row[1] < row[0]:
            raise LedgerError(f"shard {n}'s relay has events to publish: let it catch up first")
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        lags = projection_lag(conn, services.kafka_bootstrap, settings.events_topic)
    if any(lag.behind for lag in lags):
        raise LedgerError("the read models are behind ledger.events: let them catch up first")


def _aggregates(ledger: Ledger, url: str) -> dict[UUID, tuple[str, bool]]:
    """Every aggregate of a shard: its subject, and whether it is of the catalog."""
    found: dict[UUID, tuple[str, bool]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        firsts = conn.execute(
            "SELECT originator_id FROM ledger_events WHERE originator_version = 1"
        ).fetchall()
    ids = [row[0] for row in firsts]
    for start in range(0, len(ids), _COPY_PAGE):
        stored = ledger.ledger_recorder.select_events_for(ids[start : start + _COPY_PAGE])
        for aggregate, events in stored.items():
            first: Any = ledger.mapper.to_domain_event(events[0])
            found[aggregate] = (subject_of(first), isinstance(first, Specialization.Event))
    return found


_ROWS = (
    "SELECT notification_id, originator_id, originator_version, topic, state FROM ledger_events"
    " WHERE originator_id = ANY(%s) ORDER BY notification_id"
)


def _copy_streams(source: str, target: str, ids: list[UUID]) -> int:
    """The streams' rows, in the source's order, into the target (one transaction)."""
    copied = 0
    with psycopg.connect(source) as read, psycopg.connect(target) as write:
        rows = read.execute(_ROWS, (ids,)).fetchall()
        with write.cursor() as cur:
            for start in range(0, len(rows), _COPY_PAGE):
                page = rows[start : start + _COPY_PAGE]
                cur.executemany(
                    "INSERT INTO ledger_events (originator_id, originator_version, topic, state)"
                    " VALUES (%s, %s, %s, %s)",
                    [(r[1], r[2], r[3], r[4]) for r in page],
                )
                copied += len(page)
        write.commit()
    return copied


def _same_streams(source: str, target: str, ids: list[UUID]) -> None:
    """Raise unless the target holds the very rows of the source for these streams."""
    with (
        psycopg.connect(source, autocommit=True) as a,
        psycopg.connect(target, autocommit=True) as b,
    ):
        query = (
            "SELECT originator_id, originator_version, topic, state FROM ledger_events"
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        )
        old = a.execute(query, (ids,)).fetchall()
        new = b.execute(query, (ids,)).fetchall()
    if old != new:
        raise LedgerError(
            f"the copied streams differ from the originals ({len(old)} rows against "
            f"{len(new)}): nothing was deleted; drop the new shards' tables and try again"
        )


def _bookkeeping(source: str, target: str, topic: str) -> None:
    """Intake positions, accepted pairs and the relay's positions for the new shard."""
    with psycopg.connect(source, autocommit=True) as read, psycopg.connect(target) as write:
        positions = read.execute(
            "SELECT topic, partition, next_offset FROM ledger_intake_positions WHERE topic = %s",
            (topic,),
        ).fetchall()
        accepted = read.execute(
            "SELECT source, message_id, digest, message_type, topic, partition, kafka_offset"
            " FROM ledger_intake_messages"
        ).fetchall()
        with write.cursor() as cur:
            cur.executemany(
                "INSERT INTO ledger_intake_positions (topic, partition, next_offset)"
                " VALUES (%s, %s, %s)",
                positions,
            )
            cur.executemany(
                "INSERT INTO ledger_intake_messages (source, message_id, digest, message_type,"
                " topic, partition, kafka_offset) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                accepted,
            )
            newest = cur.execute(
                "SELECT coalesce(max(notification_id), 0) FROM ledger_events"
            ).fetchone()
            cur.execute(
                "INSERT INTO ledger_relay_positions (stream, position) VALUES (%s, %s)",
                (EVENTS_STREAM, int(newest[0]) if newest else 0),
            )
        write.commit()


def _start_ids_above(source: str, target: str) -> None:
    with psycopg.connect(source, autocommit=True) as read:
        row = read.execute("SELECT coalesce(max(notification_id), 0) FROM ledger_events").fetchone()
    above = (int(row[0]) if row else 0) + 1
    with psycopg.connect(target, autocommit=True) as write:
        write.execute(
            "SELECT setval(pg_get_serial_sequence('ledger_events', 'notification_id'), %s, false)",
            (above,),
        )
        left = write.execute("SELECT count(*) FROM ledger_events").fetchone()
    if left and left[0]:
        raise LedgerError("a new shard must be empty: its event store already holds events")


def double(
    settings: Settings,
    services: Services,
    new_urls: Sequence[str],
    progress: Callable[[str], None] = lambda _: None,
) -> Doubled:
    """Move from the services' N shards to those and `new_urls` (N of them); see the module
    docstring. Nothing is deleted from an old shard before its copies are verified."""
    old_urls = list(services.shard_urls)
    if len(new_urls) != len(old_urls):
        raise LedgerError(f"doubling {len(old_urls)} shard(s) takes {len(old_urls)} new URL(s)")
    after = Layout(2 * len(old_urls), settings.partitions)  # the partitions must suit 2N
    check_caught_up(settings, services)
    doubled = Doubled(len(old_urls), 2 * len(old_urls))
    target = services.with_database(*old_urls, *new_urls)
    bootstrap.prepare_database(target)
    moves: list[tuple[str, str, list[UUID]]] = []
    for index, (source, destination) in enumerate(zip(old_urls, new_urls, strict=True)):
        new_index = index + len(old_urls)
        progress(f"shard {index + 1} to shard {new_index + 1}: reading its streams")
        ledger = bootstrap.open_ledger(services, shard=index)
        try:
            aggregates = _aggregates(ledger, source)
        finally:
            ledger.close()
        moving = [
            a
            for a, (subject, catalog) in aggregates.items()
            if not catalog and after.shard_of(subject) == new_index
        ]
        catalog = [a for a, (_, is_catalog) in aggregates.items() if is_catalog]
        _start_ids_above(source, destination)
        progress(f"shard {new_index + 1}: copying {len(moving)} learners and the catalog")
        doubled.catalog_events.append(_copy_streams(source, destination, catalog))
        doubled.events.append(_copy_streams(source, destination, moving))
        doubled.learners.append(len(moving))
        _bookkeeping(source, destination, settings.intake_topic)
        _same_streams(source, destination, moving + catalog)
        moves.append((source, destination, moving))
    for source, _destination, moving in moves:
        with psycopg.connect(source) as conn:
            conn.execute("DELETE FROM ledger_events WHERE originator_id = ANY(%s)", (moving,))
            conn.commit()
    doubled.shards = " ".join([*old_urls, *new_urls])
    return doubled
