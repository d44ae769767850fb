"""`ledger export xapi`: the published events of the whole ledger (or of one learner, or from a
position on) as xAPI statements, into a file (JSON lines) or to an LRS.

It reads `ledger.events` from the beginning (every partition, outside any consumer group) up to
where each partition ended when it started. To an LRS it sends batches and, for a whole
export, records after each how far it got, so the next run of the same export resumes there
and sends nothing twice; an export of one learner or from a position (`--learner`,
`--since`) is a one-off and starts from the beginning each time (the LRS ignores statements it
holds already).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psycopg

from bridges.xapi import positions
from bridges.xapi.lrs import Lrs
from bridges.xapi.statements import KINDS, Statements
from ledger.broker import Consumer
from ledger.settings import Services, Settings
from projections.applying import read_batch

BATCH = 500


@dataclass
class ExportResult:
    events: int = 0
    statements: int = 0
    stored: int = 0
    known: int = 0
    conflicts: list[str] = field(default_factory=list)
    resumed: bool = False
    seconds: float = 0.0


class Target:
    """Where the statements go: an LRS (by URL) or a file."""

    def __init__(self, to: str, username: str | None, password: str | None) -> None:
        self.to = to
        self.lrs = Lrs(to, username, password) if to.startswith(("http://", "https://")) else None
        self._file: TextIO | None = None

    def send(self, statements: list[dict[str, Any]], result: ExportResult) -> None:
        result.statements += len(statements)
        if self.lrs is not None:
            sent = self.lrs.send(statements)
            result.stored += sent.stored
            result.known += sent.known
            result.conflicts.extend(sent.conflicts)
            return
        if self._file is None:
            self._file = Path(self.to).open("w", encoding="utf-8")  # noqa: SIM115 - closed below
        for statement in statements:
            self._file.write(json.dumps(statement, sort_keys=True) + "\n")
        result.stored += len(statements)

    def close(self) -> None:
        if self.lrs is not None:
            self.lrs.close()
        if self._file is not None:
            self._file.close()


def export(
    settings: Settings,
    services: Services,
    target: Target,
    *,
    learner: str | None = None,
    since: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Export (see the module docstring); `progress` is told records read and to read."""
    started = time.monotonic()
    result = ExportResult()
    statements = Statements(settings.issuer_url)
    topic = settings.events_topic
    resumable = target.lrs is not None and learner is None and since == 0
    consumer = Consumer(services.kafka_bootstrap, None, "ledger-xapi-export", 5000)
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        positions.create_table(conn)
        try:
            partitions = consumer.assign_all(topic)
            ends = consumer.end_offsets(partitions)
            stored = positions.load(conn, target.to, topic) if resumable else {}
            result.resumed = bool(stored)
            done = {p: stored.get(p[1], 0) for p in partitions}
            for p in partitions:
                consumer.seek(p[0], p[1], done[p])
            total = sum(ends.values())
            while any(done[p] < ends[p] for p in partitions):
                records = [
                    r
                    for r in consumer.poll(timeout_ms=500)
                    if r.offset < ends[(r.topic, r.partition)]
                ]
                if not records:
                    continue
                batch = read_batch(records)
                chosen = []
                for _, event in batch.events:
                    if event is None or event.kind not in KINDS:
                        continue
                    if event.position <= since or (learner and event.subject != learner):
                        continue
                    made = statements.of(event)
                    if made is not None:
                        chosen.append(made)
                result.events += len(batch.events)
                for start in range(0, len(chosen), BATCH):
                    target.send(chosen[start : start + BATCH], result)
                done.update(batch.next_offsets)
                if resumable:
                    positions.save(conn, target.to, batch.next_offsets)
                if progress is not None:
                    progress(sum(min(done[p], ends[p]) for p in partitions), total)
        finally:
            consumer.close()
            target.close()
    result.seconds = time.monotonic() - started
    return result
