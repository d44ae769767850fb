"""The query plans of the support queries (`ledger bench queries --explain`): each query is asked
once on a connection that notes every statement it sends, then each SELECT noted is run again
under `EXPLAIN (ANALYZE, BUFFERS)`. The plans are PostgreSQL's own account of how each answer
is found (which index, how many rows, how many pages), on the population just loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import psycopg
from psycopg.abc import Params, QueryNoTemplate
from psycopg.sql import SQL, Composable


@dataclass(frozen=True)
class Plan:
    """One statement a query sent, and PostgreSQL's plan for it as executed."""

    query: str
    statement: str
    plan: str


Noted = list[tuple[str, "Params | None"]]


def _noting(noted: Noted) -> type[psycopg.Cursor[Any]]:
    """A cursor class that appends each statement it executes (text, parameters) to `noted`."""

    class Noting(psycopg.Cursor[Any]):
        def execute(  # type: ignore[override]
            self,
            query: QueryNoTemplate,
            params: Params | None = None,
            *,
            prepare: bool | None = None,
            binary: bool | None = None,
        ) -> Self:
            if isinstance(query, Composable):
                text = query.as_string(self.connection)
            elif isinstance(query, bytes):
                text = query.decode()
            else:
                text = str(query)
            noted.append((text, params))
            return super().execute(query, params, prepare=prepare, binary=binary)

    return Noting


def explain(
    url: str, queries: Sequence[tuple[str, Callable[[psycopg.Connection[Any]], object]]]
) -> list[Plan]:
    """The plan of every SELECT each query sends, in the order sent."""
    plans: list[Plan] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for name, ask in queries:
            noted: Noted = []
            conn.cursor_factory = _noting(noted)
            try:
                ask(conn)
            finally:
                conn.cursor_factory = psycopg.Cursor
            for text, params in noted:
                if not text.lstrip().upper().startswith("SELECT"):
                    continue
                explained = SQL("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF) {}").format(
                    SQL(text)  # our own statement, noted above
                )
                rows = conn.execute(explained, params).fetchall()
                plans.append(Plan(name, " ".join(text.split()), "\n".join(r[0] for r in rows)))
    return plans
