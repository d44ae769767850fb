"""What a read model is to the worker: its tables, its counters and one handler per event type."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from psycopg.sql import Composed

from projections.events import LedgerEvent
from projections.rows import Counters, Rows, Table

Handler = Callable[[Rows, LedgerEvent], None]


@dataclass(frozen=True)
class ReadModel:
    """A read model: `name`, tables and counters, and handlers keyed by event kind.

    Events without a handler change nothing in this model (they still count as applied, so
    their version is remembered).
    """

    name: str
    tables: tuple[Table, ...]
    handlers: Mapping[str, Handler]
    counters: tuple[Counters, ...] = field(default=())

    def ddl(self, schema: str) -> list[Composed]:
        return [t.ddl(schema) for t in self.tables] + [c.ddl(schema) for c in self.counters]

    def rows(self) -> Rows:
        return Rows(self.tables, self.counters)

    def apply(self, rows: Rows, event: LedgerEvent) -> None:
        handler = self.handlers.get(event.kind)
        if handler is not None:
            handler(rows, event)
