"""A platform-sized population in the read models, for `ledger bench queries`: a template of
learners decided by the real handlers and applied by the projection worker's own code
(`bench.ledger_events`, `projections.applying`), then copied in SQL under new ids.

Through Kafka a million learners would take hours; copying takes about two minutes. The copies
are checked against their template learners on a sample (`check_copies`): every row of every
learner-scoped table equal but for the renamed ids.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg.sql import SQL, Composed, Identifier
from rich.console import Console
from rich.progress import Progress

from ledger.broker import OutRecord, Record
from ledger.entrypoints.bench.ledger_events import WORKER_BATCH, ledger_event_records
from ledger.entrypoints.demo.cohort import Cohort
from ledger.errors import LedgerError
from projections import generations
from projections.applying import apply_batch, read_batch
from projections.catalog import READ_MODELS
from projections.read_models import learner_progress
from projections.rows import Table as RowsTable

#: Learners simulated for the queries bench; larger populations are copies of them.
TEMPLATE_LEARNERS = 2000
#: Learner-scoped columns whose values must differ between copies of a learner: the learner id
#: (every learner-scoped primary key starts with it), and the two values that are unique across
#: all learners (a certificate's id is a primary key, its verification code is what `verify`
#: looks up). Every other value may repeat across learners, as it does in real data.
RENAMED_COLUMNS = frozenset({"learner_id", "certificate_id", "verification_code"})


def _as_records(records: Sequence[OutRecord]) -> list[Record]:
    """Published records as a consumer reads them (one partition, offsets in order)."""
    return [
        Record(r.topic, 0, offset, r.key, r.value, list(r.headers))
        for offset, r in enumerate(records)
    ]


def _apply_template(
    conn: psycopg.Connection[Any],
    schemas: dict[str, str],
    records: Sequence[Record],
    advance: Callable[[int], None],
) -> None:
    """Apply the events to every read model with the worker's own code, a batch at a time."""
    with conn.cursor() as cur:
        for start in range(0, len(records), WORKER_BATCH):
            batch = read_batch(records[start : start + WORKER_BATCH])
            with conn.transaction():
                for model in READ_MODELS:
                    apply_batch(cur, model, schemas[model.name], batch)
            advance(len(batch.events))


def _copy_sql(schema: str, table: RowsTable) -> Composed:
    """Copy the template learners' rows of `table` under renamed ids (`RENAMED_COLUMNS`)."""
    columns = [
        SQL("{c} || %(suffix)s").format(c=Identifier(c)) if c in RENAMED_COLUMNS else Identifier(c)
        for c in table.column_names
    ]
    return SQL(
        "INSERT INTO {s}.{t} ({names}) SELECT {columns} FROM {s}.{t}"
        " WHERE {scope} = ANY(%(template)s)"
    ).format(
        s=Identifier(schema),
        t=Identifier(table.name),
        names=SQL(", ").join(map(Identifier, table.column_names)),
        columns=SQL(", ").join(columns),
        scope=Identifier(table.scope),
    )


def _replicate(
    conn: psycopg.Connection[Any],
    schemas: dict[str, str],
    template: list[str],
    copies: int,
    advance: Callable[[int], None],
) -> None:
    """Make `copies` of the template learners: copies 1.. are new learners with the same rows.

    Every learner-scoped table is copied with its ids renamed; the catalog is shared. Each copy
    adds exactly the template's contribution to every counter (the retention funnel), so the
    counters are multiplied by `copies` at the end. The partitions' positions are not copied:
    they only dedupe events, and no more events will come.
    """
    statements = [_copy_sql(schema, table) for schema, table in _learner_tables(schemas)]
    for copy in range(1, copies):
        with conn.transaction():
            for statement in statements:
                # `_x` and the copy's number: still a valid verification code (base64url), so
                # the copies' certificates can be asked for through the API as well.
                conn.execute(statement, {"suffix": f"_x{copy}", "template": template})
        advance(1)
    if copies > 1:
        with conn.transaction():
            for model in READ_MODELS:
                for counters in model.counters:
                    conn.execute(
                        SQL("UPDATE {s}.{t} SET {figures}").format(
                            s=Identifier(schemas[model.name]),
                            t=Identifier(counters.name),
                            figures=SQL(", ").join(
                                SQL("{f} = {f} * {k}").format(f=Identifier(f), k=copies)
                                for f in counters.figures
                            ),
                        )
                    )


def load_population(
    conn: psycopg.Connection[Any], learners: int, console: Console
) -> tuple[list[str], int]:
    """Fill the live read models with about `learners` learners; return (template, copies).

    The template is the demo's cohort (its journeys follow the platform's completion figures,
    so there are certificates, refusals and dropouts); `bench_messages` would not do here, as it
    never both grades and pays one course and so earns no certificate for `verify` to find.
    """
    copies = max(1, math.ceil(learners / TEMPLATE_LEARNERS))
    template_learners = math.ceil(learners / copies)
    cohort = Cohort(template_learners, seed=7, topic="bench", run_id="bench")
    inbound = [*cohort.catalog(), *cohort.learner_messages()]
    with conn.cursor() as cur:
        schemas = {m.name: generations.live_schema(cur, m.name) for m in READ_MODELS}
    with Progress(console=console, transient=True) as bar:
        deciding = bar.add_task("deciding the cohort's messages in memory", total=len(inbound))
        records = _as_records(
            ledger_event_records(inbound, "bench", lambda n: bar.advance(deciding, n))
        )
        applying = bar.add_task("applying its events to the read models", total=len(records))
        _apply_template(conn, schemas, records, lambda n: bar.advance(applying, n))
        with conn.cursor() as cur:
            cur.execute(
                SQL("SELECT learner_id FROM {s}.{t}").format(
                    s=Identifier(schemas[learner_progress.NAME]),
                    t=Identifier(learner_progress.LEARNERS.name),
                )
            )
            template = [row[0] for row in cur.fetchall()]
        copying = bar.add_task(f"copying {len(template):,} learners", total=copies - 1)
        _replicate(conn, schemas, template, copies, lambda n: bar.advance(copying, n))
        bar.add_task("vacuum and analyze", total=None)
        conn.execute("VACUUM (ANALYZE)")
    return template, copies


def _learner_tables(schemas: dict[str, str]) -> list[tuple[str, RowsTable]]:
    return [
        (schemas[model.name], table)
        for model in READ_MODELS
        for table in model.tables
        if table.scope == "learner_id"
    ]


def _rows_of(
    conn: psycopg.Connection[Any], schema: str, table: RowsTable, learner: str
) -> list[tuple[Any, ...]]:
    """One learner's rows of `table`, by the query the worker loads rows with."""
    return conn.execute(table.select_sql(schema), ([learner],)).fetchall()


def _restored(row: tuple[Any, ...], renamed: frozenset[int], suffix: str) -> tuple[Any, ...]:
    """A copied row with the suffix taken off its renamed columns."""
    return tuple(
        v.removesuffix(suffix) if n in renamed and isinstance(v, str) else v
        for n, v in enumerate(row)
    )


def check_copies(
    conn: psycopg.Connection[Any], template: Sequence[str], copies: int, sample: int
) -> int:
    """Compare `sample` copied learners, row by row in every learner-scoped table, with the
    template learners they were copied from (their renamed ids put back); return the rows
    compared, or raise if any differs."""
    if copies < 2 or not template:
        return 0
    with conn.cursor() as cur:
        schemas = {m.name: generations.live_schema(cur, m.name) for m in READ_MODELS}
    rng = random.Random(17)  # noqa: S311 - picking a sample, not a secret
    compared = 0
    for _ in range(sample):
        original = rng.choice(template)
        suffix = f"_x{rng.randrange(1, copies)}"
        for schema, table in _learner_tables(schemas):
            renamed = frozenset(n for n, c in enumerate(table.column_names) if c in RENAMED_COLUMNS)
            copied = sorted(
                (
                    _restored(row, renamed, suffix)
                    for row in _rows_of(conn, schema, table, original + suffix)
                ),
                key=repr,
            )
            expected = sorted(_rows_of(conn, schema, table, original), key=repr)
            if copied != expected:
                raise LedgerError(
                    f"{original + suffix} differs from {original} in {schema}.{table.name}"
                )
            compared += len(copied)
    return compared
