"""Read-model rows changed in memory and written back in bulk: how projections stay fast.

Applying events one SQL statement at a time caps a projection at a few thousand events a
second. Instead, for each batch, the worker loads every row of the learners (and
specializations) the batch touches, in one query per table; the read model's handlers change
those rows as plain dicts; and only the rows that differ from what was loaded are written back,
one `INSERT ... SELECT FROM json_populate_recordset(...) ON CONFLICT DO UPDATE` per table: the
rows go as one JSON document written by orjson, which costs a fraction of binding arrays
column by column in Python. Rows that are not stored yet (their learner's rows were loaded,
and they were not among them: most rows of a batch, and every row a rebuild writes first) go
in one `COPY` per table instead, which PostgreSQL takes in about 60% of the upsert's time.
Aggregates over many learners (the retention funnel) are `Counters`: handlers add deltas,
written as increments.

A `Table` is declared once (columns with their PostgreSQL types, primary key, the column that
scopes it to a learner or a specialization) and gives its DDL, its load query and its upsert.
Lists are `jsonb` columns; they load as tuples, so a handler cannot change one in place behind
the change detection (which compares each row a handler reached with a shallow copy taken
when it first reached it): it assigns a new tuple instead.

A `Rows` may outlive its batch: the live worker keeps one per read model and loads only the
scopes it has not seen yet, since a learner's events all come from one partition and so from
one worker process. Whoever keeps it must drop it when that stops being true (partitions
reassigned, a generation switched) or when a transaction fails (its rows would hold changes
that were never written).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any

import orjson
from psycopg import Cursor
from psycopg.sql import SQL, Composed, Identifier

Row = dict[str, Any]
Key = tuple[Any, ...]
Cur = Cursor[tuple[Any, ...]]


@dataclass(frozen=True)
class Table:
    """A read-model table: columns (name, PostgreSQL type), primary key, and scope column.

    `scope` names the column holding the learner id (or specialization id) the rows belong
    to: the batch loads rows by it. `indexes` are extra columns to index for queries.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    scope: str
    indexes: tuple[str, ...] = ()
    #: Columns whose values come from where events happen to stand in the event store (a
    #: notification id), not from the history itself: the same in a rebuild, different in
    #: another ledger told the same story (`ledger chaos` compares such ledgers without them).
    store_order: tuple[str, ...] = ()

    @cached_property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @cached_property
    def column_set(self) -> frozenset[str]:
        return frozenset(self.column_names)

    @cached_property
    def list_columns(self) -> tuple[str, ...]:
        return tuple(c for c, t in self.columns if t == "jsonb")

    def key_of(self, row: Mapping[str, Any]) -> Key:
        return tuple([row[c] for c in self.key])

    def ddl(self, schema: str) -> Composed:
        columns = SQL(", ").join(
            SQL("{} {}").format(Identifier(c), SQL(t)) for c, t in self.columns
        )
        statements = [
            SQL("CREATE TABLE IF NOT EXISTS {s}.{t} ({cols}, PRIMARY KEY ({key}))").format(
                s=Identifier(schema),
                t=Identifier(self.name),
                cols=columns,
                key=SQL(", ").join(map(Identifier, self.key)),
            )
        ]
        for column in {self.scope, *self.indexes} - {self.key[0]}:
            statements.append(
                SQL("CREATE INDEX IF NOT EXISTS {i} ON {s}.{t} ({c})").format(
                    i=Identifier(f"{self.name}_{column}_idx"),
                    s=Identifier(schema),
                    t=Identifier(self.name),
                    c=Identifier(column),
                )
            )
        return SQL("; ").join(statements)

    def select_sql(self, schema: str) -> Composed:
        return SQL("SELECT {cols} FROM {s}.{t} WHERE {scope} = ANY(%b)").format(
            cols=SQL(", ").join(map(Identifier, self.column_names)),
            s=Identifier(schema),
            t=Identifier(self.name),
            scope=Identifier(self.scope),
        )

    def upsert_sql(self, schema: str) -> Composed:
        """Insert or update the rows of one JSON array of objects (see `rows_json`)."""
        names = self.column_names
        others = [c for c in names if c not in self.key]
        update = (
            SQL("DO UPDATE SET ")
            + SQL(", ").join(SQL("{c} = EXCLUDED.{c}").format(c=Identifier(c)) for c in others)
            if others
            else SQL("DO NOTHING")
        )
        cols = SQL(", ").join(map(Identifier, names))
        return (
            SQL(
                "INSERT INTO {s}.{t} ({cols}) SELECT {cols}"
                " FROM json_populate_recordset(NULL::{s}.{t}, %s::json) ON CONFLICT ({key}) "
            ).format(
                s=Identifier(schema),
                t=Identifier(self.name),
                cols=cols,
                key=SQL(", ").join(map(Identifier, self.key)),
            )
            + update
        )

    def copy_sql(self, schema: str) -> Composed:
        return SQL("COPY {s}.{t} ({cols}) FROM STDIN").format(
            s=Identifier(schema),
            t=Identifier(self.name),
            cols=SQL(", ").join(map(Identifier, self.column_names)),
        )

    def copy_rows(self, cur: Cur, schema: str, rows: Sequence[Row]) -> None:
        """Insert rows known not to be stored yet with one `COPY`: about 40% less time than the
        upsert for the same rows (5,000 certificate-like rows: 58 against 94-104 ms), most rows of
        a batch being new. Lists go as JSON text, which PostgreSQL reads as `jsonb`; every other
        value as psycopg writes it for its column's type, as the JSON path would read it."""
        names = self.column_names
        lists = [n for n, name in enumerate(names) if name in self.list_columns]
        with cur.copy(_copy(self, schema)) as copy:
            for row in rows:
                values = [row[name] for name in names]
                for n in lists:
                    if values[n] is not None:
                        values[n] = orjson.dumps(values[n], default=_json_default).decode()
                copy.write_row(values)

    def rows_json(self, rows: Sequence[Row]) -> str:
        """The rows as one JSON array (decimals as strings, times in ISO 8601, tuples as
        arrays): what `upsert_sql` reads with `json_populate_recordset`, which takes each
        column by name (so rows are written as they are: `put` saw every column is there)."""
        return orjson.dumps(rows, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to a read-model row")


@dataclass(frozen=True)
class Counters:
    """Additive figures keyed by some columns: handlers add deltas, the flush adds them up."""

    name: str
    key: tuple[tuple[str, str], ...]
    figures: tuple[str, ...]

    def ddl(self, schema: str) -> Composed:
        cols = [SQL("{} {} NOT NULL").format(Identifier(c), SQL(t)) for c, t in self.key]
        cols += [SQL("{} bigint NOT NULL DEFAULT 0").format(Identifier(f)) for f in self.figures]
        return SQL("CREATE TABLE IF NOT EXISTS {s}.{t} ({cols}, PRIMARY KEY ({key}))").format(
            s=Identifier(schema),
            t=Identifier(self.name),
            cols=SQL(", ").join(cols),
            key=SQL(", ").join(Identifier(c) for c, _ in self.key),
        )

    def increment_sql(self, schema: str) -> Composed:
        names = [c for c, _ in self.key] + list(self.figures)
        types = [t for _, t in self.key] + ["bigint"] * len(self.figures)
        return SQL(
            "INSERT INTO {s}.{t} AS c ({cols}) SELECT * FROM unnest({arrays}) "
            "ON CONFLICT ({key}) DO UPDATE SET {sets}"
        ).format(
            s=Identifier(schema),
            t=Identifier(self.name),
            cols=SQL(", ").join(map(Identifier, names)),
            arrays=SQL(", ").join(SQL("%b::{}[]").format(SQL(t)) for t in types),
            key=SQL(", ").join(Identifier(c) for c, _ in self.key),
            sets=SQL(", ").join(
                SQL("{f} = c.{f} + EXCLUDED.{f}").format(f=Identifier(f)) for f in self.figures
            ),
        )


@lru_cache(maxsize=1024)
def _statement(spec: Table | Counters, schema: str) -> bytes:
    """The statement a batch runs on `spec` in `schema` (a table's upsert, counters' increment),
    composed and quoted once: doing that on every batch cost about a fifth of a millisecond per
    statement, several times per batch and read model."""
    composed = spec.upsert_sql(schema) if isinstance(spec, Table) else spec.increment_sql(schema)
    return composed.as_bytes(None)


@lru_cache(maxsize=1024)
def _copy(table: Table, schema: str) -> bytes:
    return table.copy_sql(schema).as_bytes(None)


@lru_cache(maxsize=1024)
def select_statement(table: Table, schema: str) -> bytes:
    """`table`'s load query in `schema`, composed once; its one parameter is the scope values."""
    return table.select_sql(schema).as_bytes(None)


@dataclass
class _Loaded:
    rows: dict[Key, Row] = field(default_factory=dict)
    #: The rows again, by their scope value (learner id): what `where` looks in.
    by_scope: dict[Any, dict[Key, Row]] = field(default_factory=dict)
    #: The rows handlers reached since the last flush (only they can have changed), each as
    #: it was before (None: it did not exist). Copied on first reach, not at load, because most
    #: rows loaded for a batch are only read.
    touched: dict[Key, Row | None] = field(default_factory=dict)

    def reach(self, key: Key, row: Row) -> Row:
        """`row`, remembered as it is now if this is the first reach since the flush."""
        if key not in self.touched:
            self.touched[key] = dict(row)
        return row


class Rows:
    """The rows of one read model for the scope of one batch, changed in memory."""

    def __init__(self, tables: Iterable[Table], counters: Iterable[Counters] = ()) -> None:
        self.tables = {t.name: t for t in tables}
        self.counters = {c.name: c for c in counters}
        self._loaded = {name: _Loaded() for name in self.tables}
        self._deltas: dict[str, dict[Key, list[int]]] = {name: {} for name in self.counters}
        #: (Scope column, value) pairs whose rows are all loaded.
        self._scopes: set[tuple[str, Any]] = set()

    @property
    def scopes(self) -> int:
        """How many learners (and specializations) this holds the rows of."""
        return len(self._scopes)

    # Loading and writing

    def load(self, cur: Cur, schema: str, scope: Mapping[str, Iterable[str]]) -> None:
        """Every row, of every table, whose scope column holds one of the values given for that
        column (`{"learner_id": [...], "specialization_id": [...]}`); tables whose scope column
        is not given are not asked. Those loaded before are kept as they are: they may hold
        this batch's changes.

        By column, because a learner's events never reach the catalog's rows nor a catalog
        event a learner's: asking the catalog tables for thousands of learner ids found
        nothing, at a query a batch per such table."""
        for table, asked in self.to_load(scope):
            cur.execute(select_statement(table, schema), (asked,))
            self.take(table, cur.fetchall())

    def to_load(self, scope: Mapping[str, Iterable[str]]) -> list[tuple[Table, list[str]]]:
        """The queries `load` runs, as (table, scope values to ask for): each table's rows of
        the scopes not loaded before, which count as loaded from now on. For a caller that
        sends them all before reading any answer (`projections.applying.apply_pipelined`);
        it gives each answer to `take`."""
        wanted: dict[str, list[str]] = {}
        for column, values in scope.items():
            fresh = sorted({(column, v) for v in values} - self._scopes)
            if fresh:
                self._scopes.update(fresh)
                wanted[column] = [v for _, v in fresh]
        if not wanted:
            return []
        return [
            (table, wanted[table.scope])
            for table in self.tables.values()
            if wanted.get(table.scope)
        ]

    def take(self, table: Table, found: Iterable[Sequence[Any]]) -> None:
        """Keep the rows a `to_load` query of `table` found (in `select_statement`'s columns)."""
        names = table.column_names
        loaded = self._loaded[table.name]
        lists = table.list_columns
        scope_column = table.scope
        for row_values in found:
            row = dict(zip(names, row_values, strict=True))
            for name in lists:
                if isinstance(row[name], list):
                    row[name] = tuple(row[name])
            key = table.key_of(row)
            loaded.rows[key] = row
            loaded.by_scope.setdefault(row[scope_column], {})[key] = row

    def flush(self, cur: Cur, schema: str, *, copy: bool = True) -> int:
        """Write back what changed: upserts and counter increments. Returns rows written.

        Rows not stored yet go with `COPY` unless `copy` is false (in pipeline mode, which
        cannot send a `COPY`), then with the upsert as the others.
        Afterwards the rows count as they are in the database, and the deltas start again.
        """
        written = 0
        scopes = self._scopes
        for table in self.tables.values():
            loaded = self._loaded[table.name]
            rows = loaded.rows
            scope = table.scope
            new: list[Row] = []
            changed: list[Row] = []
            for key, before in loaded.touched.items():
                row = rows[key]
                if before is None and (scope, row[scope]) in scopes:
                    new.append(row)  # its scope was loaded and it was not there: not stored
                elif before != row:
                    changed.append(row)
            loaded.touched = {}
            if new and not copy:
                changed.extend(new)
            elif new:
                table.copy_rows(cur, schema, new)
            if changed:
                cur.execute(_statement(table, schema), (table.rows_json(changed),))
            written += len(new) + len(changed)
        for counters in self.counters.values():
            deltas = {k: v for k, v in self._deltas[counters.name].items() if any(v)}
            self._deltas[counters.name] = {}
            if not deltas:
                continue
            keys = sorted(deltas)  # one lock order for every worker process: no deadlock
            arrays = [[k[i] for k in keys] for i in range(len(counters.key))]
            arrays += [[deltas[k][j] for k in keys] for j in range(len(counters.figures))]
            cur.execute(_statement(counters, schema), arrays)
            written += len(keys)
        return written

    # What handlers use

    def get(self, table: str, *key: Any) -> Row | None:
        """The row with that key, if there is one; the caller may change it in place."""
        loaded = self._loaded[table]
        row = loaded.rows.get(key)
        return None if row is None else loaded.reach(key, row)

    def put(self, table: str, row: Row) -> Row:
        """Insert or replace a whole row (every column must be given)."""
        spec = self.tables[table]
        if not spec.column_set <= row.keys():
            raise KeyError(f"{table} row lacks {sorted(spec.column_set - row.keys())}")
        key = spec.key_of(row)
        loaded = self._loaded[table]
        old = loaded.rows.get(key)
        if old is not None and old[spec.scope] != row[spec.scope]:
            loaded.by_scope[old[spec.scope]].pop(key, None)
        if key not in loaded.touched:
            loaded.touched[key] = old  # replaced, not changed: no copy needed
        loaded.rows[key] = row
        loaded.by_scope.setdefault(row[spec.scope], {})[key] = row
        return row

    def setdefault(self, table: str, row: Row) -> Row:
        """The row with `row`'s key, inserted as `row` if there is none."""
        existing = self.get(table, *self.tables[table].key_of(row))
        return existing if existing is not None else self.put(table, row)

    def where(self, table: str, **equal: Any) -> Iterator[Row]:
        """The loaded rows of `table` whose columns equal the given values (looked up by the
        table's scope column when it is one of them, as handlers always give it)."""
        loaded = self._loaded[table]
        spec = self.tables[table]
        if spec.scope in equal:
            candidates = list(loaded.by_scope.get(equal.pop(spec.scope), {}).values())
        else:
            candidates = list(loaded.rows.values())
        for row in candidates:
            if all(row[c] == v for c, v in equal.items()):
                yield loaded.reach(spec.key_of(row), row)

    def deltas(self, counters: str) -> dict[Key, dict[str, int]]:
        """What this batch adds to each counter row (tests read a whole stream as one batch)."""
        figures = self.counters[counters].figures
        return {k: dict(zip(figures, v, strict=True)) for k, v in self._deltas[counters].items()}

    def add(self, counters: str, key: Key, **deltas: int) -> None:
        spec = self.counters[counters]
        figures = self._deltas[counters].setdefault(key, [0] * len(spec.figures))
        for name, delta in deltas.items():
            figures[spec.figures.index(name)] += delta
