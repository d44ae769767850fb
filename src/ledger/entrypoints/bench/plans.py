"""The query plans of the support queries (`ledger bench queries --explain`): each query is asked
once on a connection that notes every statement it sends, then each SELECT noted is run again
under `EXPLAIN (ANALYZE, BUFFERS)`. The plans are PostgreSQL's own account of how each answer
is found (which index, how many rows, how many pages), on the population just loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import ClientCursor
from psycopg.abc import Params
from psycopg.sql import SQL, Composable


@dataclass(frozen=True)
class Plan:
    """One statement a query sent, and PostgreSQL's plan for it as executed."""

    query: str
    statement: str
    plan: str


Noted = list[tuple[str, "Params | None"]]


@contextmanager
def _noting(noted: Noted) -> Iterator[None]:
    """Append every statement any cursor executes (text, parameters) to `noted` meanwhile.

    The class's method is wrapped, not a connection's cursor factory: some queries make their
    own cursor (`learner_progress` sends its seven SELECTs at once through a `ClientCursor`).
    """
    original = psycopg.Cursor.execute

    def execute(self: psycopg.Cursor[Any], query: Any, params: Any = None, **kwargs: Any) -> Any:
        if isinstance(query, Composable):
            text = query.as_string(self.connection)
        elif isinstance(query, bytes):
            text = query.decode()
        else:
            text = str(query)
        noted.append((text, params))
        return original(self, query, params, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    try:
        yield
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]


def explain(
    url: str, queries: Sequence[tuple[str, Callable[[psycopg.Connection[Any]], object]]]
) -> list[Plan]:
    """The plan of every SELECT each query sends, in the order sent (a multi-statement query
    one statement at a time)."""
    plans: list[Plan] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for name, ask in queries:
            noted: Noted = []
            with _noting(noted):
                ask(conn)
            for text, params in noted:
                for statement in text.split("; "):
                    if not statement.lstrip().upper().startswith("SELECT"):
                        continue
                    explained = SQL(
                        "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF) {}"
                    ).format(SQL(statement))  # our own statement, noted above
                    with ClientCursor(conn) as cur:
                        rows = cur.execute(explained, params).fetchall()
                    plans.append(
                        Plan(name, " ".join(statement.split()), "\n".join(r[0] for r in rows))
                    )
    return plans
