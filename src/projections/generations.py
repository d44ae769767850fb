"""Generations of a read model: each in a schema of its own, exactly one of them live.

A rebuild must never show queries a half-built model, so it builds a new generation beside the
live one (schema `rm_<model>_<n>`), from the start of `ledger.events`, and only when it has
caught up switches the registry over in one transaction and drops the old schema. Queries and
the worker look the live schema up in `projection_generations`; the worker holds a share lock
on its model's registry row while it writes a batch, so a switch waits for that batch and the
worker's next batch sees the new generation (and re-seeks to its positions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection, Cursor
from psycopg.sql import SQL, Identifier

from projections import positions, skipped
from projections.model import ReadModel

Cur = Cursor[tuple[Any, ...]]

REGISTRY_DDL = """
CREATE TABLE IF NOT EXISTS projection_generations (
    projection text NOT NULL,
    generation int NOT NULL,
    schema_name text NOT NULL UNIQUE,
    state text NOT NULL CHECK (state IN ('live', 'building', 'scratch')),
    created_at timestamptz NOT NULL DEFAULT now(),
    live_since timestamptz,
    PRIMARY KEY (projection, generation)
);
CREATE UNIQUE INDEX IF NOT EXISTS projection_generations_one_live
    ON projection_generations (projection) WHERE state = 'live';
"""


class NoLiveGenerationError(LookupError):
    """The read model has no live generation: its tables were never created."""


@dataclass(frozen=True)
class Generation:
    projection: str
    generation: int
    schema: str
    state: str


def schema_name(model: ReadModel, generation: int) -> str:
    return f"rm_{model.name}_{generation}"


def _create_schema(cur: Cur, model: ReadModel, schema: str) -> None:
    cur.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
    _add_missing_columns(cur, model, schema)
    for statement in [*model.ddl(schema), *positions.ddl(schema), *skipped.ddl(schema)]:
        cur.execute(statement)


def _add_missing_columns(cur: Cur, model: ReadModel, schema: str) -> None:
    """Give a generation made by an older release the columns its model has gained since, so
    the worker can write every column of new rows (and the indexes on them can be made).

    The rows it stored before hold nothing in them, so this says so, and what fills them: a
    rebuild. It is not done here, unasked: a rebuild reads the whole of `ledger.events`."""
    cur.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
        (schema,),
    )
    present = set(cur.fetchall())
    tables = {name for name, _ in present}
    for table in model.tables:
        if table.name not in tables:
            continue  # made whole below
        missing = [(c, t) for c, t in table.columns if (table.name, c) not in present]
        if missing:
            cur.execute(
                SQL("ALTER TABLE {s}.{t} {add}").format(
                    s=Identifier(schema),
                    t=Identifier(table.name),
                    add=SQL(", ").join(
                        SQL("ADD COLUMN IF NOT EXISTS {c} {k}").format(c=Identifier(c), k=SQL(k))
                        for c, k in missing
                    ),
                )
            )
            # Imported only now: support commands read generations, and start faster without
            # the logging stack (tests/unit/test_cli_faces.py).
            from ledger.logs import get_logger  # noqa: PLC0415

            get_logger(__name__).warning(
                "projections.columns_added",
                projection=model.name,
                schema=schema,
                table=table.name,
                columns=[c for c, _ in missing],
                action=f"rows stored before lack them: run `ledger projections rebuild "
                f"{model.name}`",
            )


def new_generation(conn: Connection[Any], model: ReadModel, state: str) -> Generation:
    """Create the next generation's schema and tables, registered in `state`."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("LOCK TABLE projection_generations IN SHARE ROW EXCLUSIVE MODE")
        cur.execute(
            "SELECT coalesce(max(generation), 0) + 1 FROM projection_generations"
            " WHERE projection = %s",
            (model.name,),
        )
        row = cur.fetchone()
        number = int(row[0]) if row else 1
        schema = schema_name(model, number)
        _create_schema(cur, model, schema)
        cur.execute(
            "INSERT INTO projection_generations (projection, generation, schema_name, state,"
            " live_since) VALUES (%s, %s, %s, %s, CASE WHEN %s = 'live' THEN now() END)",
            (model.name, number, schema, state, state),
        )
    return Generation(model.name, number, schema, state)


def ensure_live(conn: Connection[Any], model: ReadModel) -> Generation:
    """The live generation, created (generation 1) if the model has none yet.

    Also brings an existing live schema up to the model's current DDL (new tables only).
    """
    conn.execute(REGISTRY_DDL)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("LOCK TABLE projection_generations IN SHARE ROW EXCLUSIVE MODE")
        found = live(cur, model.name)
        if found is not None:
            _create_schema(cur, model, found.schema)
            return found
    return new_generation(conn, model, "live")


def live(cur: Cur, projection: str, *, lock: bool = False) -> Generation | None:
    """The live generation of `projection`; with `lock`, share-locked until the transaction
    ends (the worker's guard against a switch in the middle of its batch)."""
    query = (
        "SELECT generation, schema_name FROM projection_generations"
        " WHERE projection = %s AND state = 'live' FOR SHARE"
        if lock
        else "SELECT generation, schema_name FROM projection_generations"
        " WHERE projection = %s AND state = 'live'"
    )
    cur.execute(query, (projection,))
    row = cur.fetchone()
    return None if row is None else Generation(projection, int(row[0]), str(row[1]), "live")


def live_schema(cur: Cur, projection: str) -> str:
    """The schema queries read `projection` from."""
    found = live(cur, projection)
    if found is None:
        raise NoLiveGenerationError(
            f"read model {projection!r} has no tables yet: run `ledger run projections` "
            "(or `ledger stack up`) once"
        )
    return found.schema


def switch(conn: Connection[Any], model: ReadModel, to: Generation) -> Generation | None:
    """Make `to` live; drop the generation it replaces (returned)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "SELECT generation, schema_name FROM projection_generations"
            " WHERE projection = %s AND state = 'live' FOR UPDATE",
            (model.name,),
        )
        row = cur.fetchone()
        old = None if row is None else Generation(model.name, int(row[0]), str(row[1]), "live")
        if old is not None:
            cur.execute(
                "DELETE FROM projection_generations WHERE projection = %s AND generation = %s",
                (model.name, old.generation),
            )
            cur.execute(SQL("DROP SCHEMA {} CASCADE").format(Identifier(old.schema)))
        cur.execute(
            "UPDATE projection_generations SET state = 'live', live_since = now()"
            " WHERE projection = %s AND generation = %s",
            (model.name, to.generation),
        )
    return old


def drop(conn: Connection[Any], generation: Generation) -> None:
    """Remove a generation that is not live (a scratch copy, or an abandoned rebuild)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "DELETE FROM projection_generations WHERE projection = %s AND generation = %s"
            " AND state <> 'live'",
            (generation.projection, generation.generation),
        )
        cur.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(generation.schema)))
