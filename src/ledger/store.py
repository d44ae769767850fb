"""The PostgreSQL event store, extended so intake bookkeeping commits with the events it caused.

eventsourcing's process recorder writes a batch of events in one transaction. `LedgerRecorder`
hooks into that same transaction to also write what the intake worker must never lose or apply
twice: the Kafka position it has consumed up to, the (source, id) of every message it accepted,
and every message it rejected. So "events stored" and "message consumed" can never disagree,
whatever crashes when (DESIGN §6).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

#: Batches of up to this many events and messages are written, and read, in pipeline mode
#: (`LedgerRecorder.insert_events`).
PIPELINED_MAX = 250


@dataclass(frozen=True)
class IntakePosition:
    """The next offset to consume on one partition of the intake topic."""

    topic: str
    partition: int
    next_offset: int


@dataclass(frozen=True)
class AcceptedMessage:
    """An accepted CloudEvent: its identity, a digest of its content, where it was read."""

    source: str
    message_id: str
    digest: str
    message_type: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Rejection:
    """A message the intake could not accept, kept whole with the reason (nothing is dropped)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]]
    reason: str
    message: str
    message_source: str | None = None
    message_id: str | None = None


@dataclass
class IntakeBookkeeping:
    """Everything the intake writes in the transaction of one batch, beside the events."""

    positions: list[IntakePosition] = field(default_factory=list)
    accepted: list[AcceptedMessage] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.positions or self.accepted or self.rejections)

    def size(self) -> int:
        """Messages accepted or rejected: what the batch's statements carry."""
        return len(self.accepted) + len(self.rejections)


@dataclass(frozen=True)
class StoredRejection:
    """A row of the rejections table."""

    rejection_id: int
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    reason: str
    message: str
    message_source: str | None
    message_id: str | None
    rejected_at: datetime
    retried_at: datetime | None = None
    retries: int = 0


def _headers_to_json(headers: Iterable[tuple[str, bytes | None]]) -> str:
    """Headers as JSON that `jsonb` accepts whatever their bytes: `[name, value]` pairs, each
    base64 with a third element `"b64"` saying so.

    A header may hold any bytes, NUL among them, and `jsonb` refuses `\\u0000`; the name comes
    from kafka-python as text that may carry undecodable bytes as surrogates
    (`ledger.kafka_records`), which `surrogateescape` turns back into those bytes.
    """
    return json.dumps(
        [
            [
                _b64(k.encode("utf-8", "surrogateescape")),
                None if v is None else _b64(v),
                "b64",
            ]
            for k, v in headers
        ]
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _headers_from_json(value: Any) -> list[tuple[str, bytes | None]]:
    headers: list[tuple[str, bytes | None]] = []
    for item in value:
        if len(item) == 3 and item[2] == "b64":
            name = base64.b64decode(item[0]).decode("utf-8", "surrogateescape")
            headers.append((name, None if item[1] is None else base64.b64decode(item[1])))
        else:  # rows written before: latin-1 maps every byte to one code point
            k, v = item
            headers.append((k, None if v is None else v.encode("latin-1")))
    return headers


def printable(text: str | None) -> str | None:
    """`text` as PostgreSQL can store it: NUL and lone surrogates written as escapes.

    For the text columns of a rejection (its reason, and the id and source it claimed): the
    message itself is kept as its original bytes, so nothing is lost by escaping these.
    """
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _rejection_from_row(r: Any) -> StoredRejection:
    return StoredRejection(
        rejection_id=r["rejection_id"],
        topic=r["topic"],
        partition=r["partition"],
        offset=r["kafka_offset"],
        key=r["key"],
        value=r["value"],
        headers=_headers_from_json(r["headers"]),
        reason=r["reason"],
        message=r["message"],
        message_source=r["message_source"],
        message_id=r["message_id"],
        rejected_at=r["rejected_at"],
        retried_at=r["retried_at"],
        retries=r["retries"],
    )


class LedgerRecorder(PostgresProcessRecorder):
    """The ledger's event store: events, plus intake positions, accepted ids and rejections."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        tracking_table_name: str = "notification_tracking",
    ) -> None:
        super().__init__(
            datastore,
            events_table_name=events_table_name,
            tracking_table_name=tracking_table_name,
        )
        schema = Identifier(self.datastore.schema)
        prefix = events_table_name.removesuffix("_events")
        self.positions_table = Identifier(f"{prefix}_intake_positions")
        self.messages_table = Identifier(f"{prefix}_intake_messages")
        self.rejections_table = Identifier(f"{prefix}_rejections")
        self.relay_table = Identifier(f"{prefix}_relay_positions")
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {s}.{t} ("
                    " topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL,"
                    " updated_at timestamptz NOT NULL DEFAULT now(),"
                    " PRIMARY KEY (topic, partition))"
                ).format(s=schema, t=self.positions_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {s}.{t} ("
                    " source text NOT NULL, message_id text NOT NULL, digest text NOT NULL,"
                    " message_type text NOT NULL, topic text NOT NULL, partition int NOT NULL,"
                    " kafka_offset bigint NOT NULL,"
                    " accepted_at timestamptz NOT NULL DEFAULT now(),"
                    " PRIMARY KEY (source, message_id))"
                ).format(s=schema, t=self.messages_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {s}.{t} ("
                    " rejection_id bigserial PRIMARY KEY, topic text NOT NULL,"
                    " partition int NOT NULL, kafka_offset bigint NOT NULL, key bytea,"
                    " value bytea, headers jsonb NOT NULL, reason text NOT NULL,"
                    " message text NOT NULL, message_source text, message_id text,"
                    " rejected_at timestamptz NOT NULL DEFAULT now())"
                ).format(s=schema, t=self.rejections_table),
                SQL(
                    "ALTER TABLE {s}.{t} ADD COLUMN IF NOT EXISTS retried_at timestamptz,"
                    " ADD COLUMN IF NOT EXISTS retries int NOT NULL DEFAULT 0"
                ).format(s=schema, t=self.rejections_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {s}.{t} ("
                    " stream text PRIMARY KEY, position bigint NOT NULL,"
                    " updated_at timestamptz NOT NULL DEFAULT now())"
                ).format(s=schema, t=self.relay_table),
            ]
        )
        self._insert_from_arrays = SQL(
            "INSERT INTO {s}.{t} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(s=schema, t=Identifier(events_table_name))
        self._upsert_positions = SQL(
            "INSERT INTO {s}.{t} AS p (topic, partition, next_offset)"
            " SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[])"
            " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset,"
            " updated_at = now() WHERE p.next_offset < EXCLUDED.next_offset "
            "RETURNING topic, partition"
        ).format(s=schema, t=self.positions_table)
        self._select_digests = SQL(
            "SELECT m.source, m.message_id, m.digest FROM {s}.{t} m "
            "JOIN unnest(%s::text[], %s::text[]) AS k(source, message_id) "
            "USING (source, message_id)"
        ).format(s=schema, t=self.messages_table)
        self._select_events_for = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {s}.{t} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(s=schema, t=Identifier(self.events_table_name))
        self._insert_messages = SQL(
            "INSERT INTO {s}.{t} (source, message_id, digest, message_type, topic, partition,"
            " kafka_offset) SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[],"
            " %b::text[], %b::int[], %b::bigint[])"
        ).format(s=schema, t=self.messages_table)
        self._select_events_page = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {s}.{t} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(s=schema, t=Identifier(events_table_name))
        self._select_rejections_page = SQL(
            "SELECT * FROM {s}.{t} WHERE rejection_id > %s ORDER BY rejection_id LIMIT %s"
        ).format(s=schema, t=self.rejections_table)
        self._insert_rejection = SQL(
            "INSERT INTO {s}.{t} (topic, partition, kafka_offset, key, value, headers, reason,"
            " message, message_source, message_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(s=schema, t=self.rejections_table)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """One transaction: bookkeeping, table lock, events.

        A small batch (`PIPELINED_MAX`) sends them all in psycopg's pipeline mode and waits
        for PostgreSQL twice (the results, then the commit) instead of once per statement:
        at a moderate load batches are small, and those waits were most of their time. A
        larger one goes statement by statement: with psycopg 3.3 in pipeline mode a statement
        carrying a large batch (about 2,000 events here) never finishes sending over a Unix
        socket and the connection hangs.
        """
        book: IntakeBookkeeping | None = kwargs.get("intake")
        size = len(stored_events) + (0 if book is None else book.size())
        with (
            self.datastore.get_connection() as conn,
            conn.pipeline() if size <= PIPELINED_MAX else contextlib.nullcontext(),
            conn.transaction(),
            conn.cursor() as curs,
        ):
            check = None if book is None else self._write_bookkeeping(curs, book)
            super()._insert_events(curs, stored_events, **kwargs)  # tracking, if any
            ids: list[int] = []
            if stored_events:
                self._insert_stored_events(curs, stored_events, **kwargs)
                ids = [row["notification_id"] for row in curs.fetchall()]
            if check is not None:
                check()
        return ids

    def _insert_stored_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> None:
        """Insert a batch of events, as the library does, but from four plain arrays.

        The library sends one array of a composite type, which psycopg builds in Python at
        about 90 µs an event; four arrays of plain types, sent in binary (`%b`: the text format
        runs a regex over every element to quote it), cost a fraction of that. Everything
        else is kept: the table lock (commit order = notification order), the NOTIFY, and
        `RETURNING notification_id` in insertion order.
        """
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self._insert_from_arrays,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
        )

    def _write_bookkeeping(
        self, curs: Cursor[DictRow], book: IntakeBookkeeping
    ) -> Callable[[], None] | None:
        """Send the bookkeeping's statements; return the check of the positions, to call once
        their answer is in (in pipeline mode it comes with the events' ids)."""
        check = None
        if book.positions:
            moved = curs.connection.cursor()
            moved.execute(
                self._upsert_positions,
                (
                    [p.topic for p in book.positions],
                    [p.partition for p in book.positions],
                    [p.next_offset for p in book.positions],
                ),
            )
            positions = book.positions

            def check() -> None:
                done = {(r["topic"], r["partition"]) for r in moved.fetchall()}
                for position in positions:
                    if (position.topic, position.partition) not in done:
                        # Another worker already consumed past this point (a rebalance we have
                        # not seen yet): this batch must not commit, or its effects would
                        # apply twice.
                        msg = (
                            f"intake position {position.topic}[{position.partition}] is already"
                            f" at or past offset {position.next_offset}"
                        )
                        raise IntegrityError(msg)

        if book.accepted:
            # One statement from arrays, not executemany: in pipeline mode thousands of
            # queued statements can stall the connection, and one statement is faster anyway.
            accepted = book.accepted
            curs.execute(
                self._insert_messages,
                (
                    [m.source for m in accepted],
                    [m.message_id for m in accepted],
                    [m.digest for m in accepted],
                    [m.message_type for m in accepted],
                    [m.topic for m in accepted],
                    [m.partition for m in accepted],
                    [m.offset for m in accepted],
                ),
            )
        if book.rejections:
            curs.executemany(
                self._insert_rejection,
                [
                    (
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        _headers_to_json(r.headers),
                        printable(r.reason),
                        printable(r.message),
                        printable(r.message_source),
                        printable(r.message_id),
                    )
                    for r in book.rejections
                ],
            )
            self._notify_channel(curs)  # wakes the relay, as stored events do
        return check

    # Reads used by the intake worker and the CLI.

    def _query(
        self,
        query: str,
        table: Identifier,
        params: Sequence[Any] = (),
        *,
        commit: bool = False,
        **identifiers: Any,
    ) -> list[Any]:
        """Run one statement on one of our tables (`{s}.{t}` in `query`) in its own transaction;
        return its rows (none for a statement that returns none)."""
        with self.datastore.transaction(commit=commit) as curs:
            curs.execute(
                SQL(query).format(s=Identifier(self.datastore.schema), t=table, **identifiers),
                params,
            )
            return curs.fetchall() if curs.description else []

    def intake_positions(self, topic: str) -> dict[int, int]:
        """The next offset to consume, per partition, as committed with the events."""
        rows = self._query(
            "SELECT partition, next_offset FROM {s}.{t} WHERE topic = %s",
            self.positions_table,
            (topic,),
        )
        return {row["partition"]: row["next_offset"] for row in rows}

    def accepted_digests(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """For the given (source, id) pairs, the content digest of those already accepted."""
        return self.batch_reads(keys, [])[0]

    def batch_reads(
        self, keys: Sequence[tuple[str, str]], aggregate_ids: Sequence[UUID]
    ) -> tuple[dict[tuple[str, str], str], dict[UUID, list[StoredEvent]]]:
        """What the intake reads before deciding a batch, in one transaction: the content
        digest of each (source, id) pair already accepted, and every stored event of the
        given aggregates, in version order. Sent together in pipeline mode when the batch is
        small (`insert_events` says why only then): one wait for PostgreSQL instead of two
        transactions' worth."""
        if not keys and not aggregate_ids:
            return {}, {}
        small = len(keys) + len(aggregate_ids) <= PIPELINED_MAX
        with (
            self.datastore.get_connection() as conn,
            conn.pipeline() if small else contextlib.nullcontext(),
            # Committed, though it only reads: psycopg forgets every statement it prepared on
            # a connection when it sees a ROLLBACK, so rolling back made PostgreSQL parse and
            # plan each of the intake's statements afresh every batch, after a DEALLOCATE ALL
            # (`docs/performance.md`). A transaction that wrote nothing commits at no cost.
            conn.transaction(),
        ):
            digests = events = None
            if keys:
                digests = conn.execute(
                    self._select_digests, ([k[0] for k in keys], [k[1] for k in keys])
                )
            if aggregate_ids:
                events = conn.execute(self._select_events_for, (list(aggregate_ids),))
            known = (
                {}
                if digests is None
                else {(r["source"], r["message_id"]): r["digest"] for r in digests.fetchall()}
            )
            found: dict[UUID, list[StoredEvent]] = {}
            for row in [] if events is None else events.fetchall():
                found.setdefault(row["originator_id"], []).append(
                    StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                )
        return known, found

    def select_rejections(
        self, after: int, limit: int, reason: str | None = None, newest_first: bool = False
    ) -> list[StoredRejection]:
        """Rejections with an id greater than `after` (optionally of one reason)."""
        rows = self._query(
            "SELECT * FROM {s}.{t} WHERE rejection_id > %s"
            " AND (%s::text IS NULL OR reason = %s) ORDER BY rejection_id {o} LIMIT %s",
            self.rejections_table,
            (after, reason, reason, limit),
            o=SQL("DESC" if newest_first else "ASC"),
        )
        return [_rejection_from_row(r) for r in rows]

    def relay_pages(
        self, events_after: int, rejections_after: int, limit: int
    ) -> tuple[list[Notification], list[StoredRejection]]:
        """What the relay publishes next: up to `limit` stored events after the notification
        id `events_after`, and up to `limit` rejections after `rejections_after`, in their
        order; both asked at once in pipeline mode (the queries are small, whatever their
        answers), one wait for PostgreSQL a step instead of two transactions' worth."""
        with (
            self.datastore.get_connection() as conn,
            conn.pipeline(),
            conn.transaction(),  # committed, not rolled back: see `batch_reads`
        ):
            events = conn.execute(self._select_events_page, (events_after, limit))
            rejections = conn.execute(self._select_rejections_page, (rejections_after, limit))
            notifications = [
                Notification(
                    id=row["notification_id"],
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in events.fetchall()
            ]
            return notifications, [_rejection_from_row(r) for r in rejections.fetchall()]

    def save_relay_positions(self, positions: dict[str, int]) -> None:
        """Record that everything up to each stream's position is on Kafka (one statement,
        in pipeline mode with its transaction: one wait for PostgreSQL)."""
        if not positions:
            return
        with (
            self.datastore.get_connection() as conn,
            conn.pipeline(),
            conn.transaction(),
        ):
            conn.execute(
                SQL(
                    "INSERT INTO {s}.{t} AS r (stream, position)"
                    " SELECT * FROM unnest(%s::text[], %s::bigint[])"
                    " ON CONFLICT (stream) DO UPDATE SET position = EXCLUDED.position,"
                    " updated_at = now() WHERE r.position < EXCLUDED.position"
                ).format(s=Identifier(self.datastore.schema), t=self.relay_table),
                (list(positions), list(positions.values())),
            )

    def get_rejection(self, rejection_id: int) -> StoredRejection | None:
        rows = self._query(
            "SELECT * FROM {s}.{t} WHERE rejection_id = %s", self.rejections_table, (rejection_id,)
        )
        return _rejection_from_row(rows[0]) if rows else None

    def mark_retried(self, rejection_id: int) -> None:
        """Record that an operator re-submitted this rejected message (it stays, as history)."""
        self._query(
            "UPDATE {s}.{t} SET retried_at = now(), retries = retries + 1 WHERE rejection_id = %s",
            self.rejections_table,
            (rejection_id,),
            commit=True,
        )

    def select_events_for(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        """Every stored event of the given aggregates, in one query, in version order."""
        return self.batch_reads([], aggregate_ids)[1]

    def relay_position(self, stream: str) -> int:
        """How far the relay has published `stream` (0 before it has published anything)."""
        rows = self._query(
            "SELECT position FROM {s}.{t} WHERE stream = %s", self.relay_table, (stream,)
        )
        return int(rows[0]["position"]) if rows else 0

    def rejections_by_reason(self) -> dict[str, int]:
        """How many rejections of each reason this store keeps."""
        rows = self._query(
            "SELECT reason, count(*) AS n FROM {s}.{t} GROUP BY reason", self.rejections_table
        )
        return {str(row["reason"]): int(row["n"]) for row in rows}

    def max_rejection_id(self) -> int:
        rows = self._query(
            "SELECT coalesce(max(rejection_id), 0) AS m FROM {s}.{t}", self.rejections_table
        )
        return int(rows[0]["m"])

    def reachable(self, timeout_s: int = 2) -> bool:
        """Whether the server answers a connection of its own, outside the pool: after the
        server was killed, the pool's connections are all broken and it makes new ones only
        after a growing back-off (tens of seconds), so it cannot tell that the server is back."""
        pool = self.datastore.pool
        given = pool.kwargs() if callable(pool.kwargs) else pool.kwargs
        kwargs = {k: v for k, v in (given or {}).items() if k != "row_factory"}
        conninfo = pool.conninfo() if callable(pool.conninfo) else pool.conninfo
        try:
            with psycopg.connect(conninfo, connect_timeout=timeout_s, **kwargs) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True
