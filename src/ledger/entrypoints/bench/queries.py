"""`ledger bench queries`: p50/p99/max latency of the support queries over a platform-sized
population, loaded straight into the read models' tables (through Kafka it would take longer
than the measurement deserves): a template of learners decided by the real handlers and applied
by the worker's own code (`bench.ledger_events`), then copied under new ids.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.sql import SQL, Composed, Identifier
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ledger.broker import OutRecord, Record
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import Latency, latency_of, scratch
from ledger.entrypoints.bench.http import time_http
from ledger.entrypoints.bench.ledger_events import WORKER_BATCH, ledger_event_records
from ledger.entrypoints.demo.cohort import Cohort
from ledger.settings import Services, Settings
from projections import generations
from projections.applying import apply_batch, read_batch
from projections.catalog import READ_MODELS
from projections.read_models import certificates, learner_progress, payments
from projections.read_models.eligibility import eligibility
from projections.read_models.retention import funnel
from projections.rows import Table as RowsTable

#: Learners simulated for the queries bench; larger populations are copies of them.
TEMPLATE_LEARNERS = 2000
#: The p99 the support queries are asked to stay under, in milliseconds.
QUERIES_TARGET_MS = 10.0
#: Learner-scoped columns whose values must differ between copies of a learner: the learner id
#: (every learner-scoped primary key starts with it), and the two values that are unique across
#: all learners (a certificate's id is a primary key, its verification code is what `verify`
#: looks up). Every other value may repeat across learners, as it does in real data.
RENAMED_COLUMNS = frozenset({"learner_id", "certificate_id", "verification_code"})


@dataclass(frozen=True)
class QueriesResult:
    """What `ledger bench queries` measured, and over what population."""

    learners: int
    template_learners: int
    copies: int
    certificates: int
    load_seconds: float
    latencies: tuple[Latency, ...]


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
    tables = [
        (schemas[model.name], table)
        for model in READ_MODELS
        for table in model.tables
        if table.scope == "learner_id"
    ]
    statements = [(_copy_sql(schema, table)) for schema, table in tables]
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
) -> tuple[int, int]:
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
    return len(template), copies


def _column(
    conn: psycopg.Connection[Any], projection: str, table: RowsTable, columns: str
) -> list[tuple[Any, ...]]:
    """`columns` (an SQL select list of ours) of every row of a live read-model table."""
    with conn.cursor() as cur:
        schema = generations.live_schema(cur, projection)
        cur.execute(
            SQL("SELECT {c} FROM {s}.{t}").format(
                c=SQL(columns), s=Identifier(schema), t=Identifier(table.name)
            )
        )
        return cur.fetchall()


def _count(conn: psycopg.Connection[Any], projection: str, table: RowsTable) -> int:
    return int(_column(conn, projection, table, "count(*)")[0][0])


#: Unmeasured calls of each query first: psycopg prepares a statement on its fifth execution,
#: and the first calls also warm the catalog caches of a new connection.
WARM_UP_CALLS = 20


def _population_ids(
    conn: psycopg.Connection[Any],
) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Every learner id, (learner, specialization) enrolled, and verification code loaded."""
    progress, issued = learner_progress.NAME, certificates.NAME
    learners = [r[0] for r in _column(conn, progress, learner_progress.LEARNERS, "learner_id")]
    enrollments = [
        (r[0], r[1])
        for r in _column(
            conn, progress, learner_progress.ENROLLMENTS, "learner_id, specialization_id"
        )
    ]
    codes = [r[0] for r in _column(conn, issued, certificates.CERTIFICATES, "verification_code")]
    return learners, enrollments, codes


def time_queries(
    conn: psycopg.Connection[Any], samples: int, advance: Callable[[int], None]
) -> list[Latency]:
    """Each support query `samples` times, over random existing ids, interleaved so that a
    noisy moment on the machine hits them all alike."""
    rng = random.Random(11)  # noqa: S311 - picking samples, not a secret
    learners, enrollments, codes = _population_ids(conn)
    queries: dict[str, Callable[[], object]] = {
        "learner_progress(id)": lambda: learner_progress.learner_progress(
            conn, rng.choice(learners)
        ),
        "eligibility(id, specialization)": lambda: eligibility(conn, *rng.choice(enrollments)),
    }
    queries["payments_of(id)"] = lambda: payments.payments_of(conn, rng.choice(learners))
    if codes:  # a tiny population may have earned none
        queries["certificates.verify(code)"] = lambda: certificates.verify(conn, rng.choice(codes))
    queries["retention.funnel()"] = lambda: funnel(conn)
    for query in queries.values():
        for _ in range(WARM_UP_CALLS):
            query()
    timings: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(samples):
        for name, query in queries.items():
            started = time.perf_counter()
            query()
            timings[name].append(time.perf_counter() - started)
        advance(1)
    return [latency_of(name, seconds, QUERIES_TARGET_MS) for name, seconds in timings.items()]


def run_queries_bench(
    base: Settings, services: Services, learners: int, samples: int, console: Console
) -> QueriesResult:
    """Load a population into a scratch database's read models, then time the support queries
    on one connection, as the CLI and the API each ask them."""
    with (
        scratch(base, services, f"bench-{secrets.token_hex(3)}.") as own,
        bootstrap.connect(own.services) as conn,
    ):
        started = time.perf_counter()
        template, copies = load_population(conn, learners, console)
        load_seconds = time.perf_counter() - started
        count = _count(conn, learner_progress.NAME, learner_progress.LEARNERS)
        certified = _count(conn, certificates.NAME, certificates.CERTIFICATES)
        console.print(
            f"loaded {count:,} learners ({template:,} simulated, x{copies}) and "
            f"{certified:,} certificates in {load_seconds:.1f} s"
        )
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("timing the queries", total=samples)
            latencies = time_queries(conn, samples, lambda n: bar.advance(task, n))
            task = bar.add_task("timing the API and the console over HTTP", total=samples)
            latencies += time_http(
                own, *_population_ids(conn), samples, lambda n: bar.advance(task, n)
            )
    return QueriesResult(count, template, copies, certified, load_seconds, tuple(latencies))


def print_queries(console: Console, result: QueriesResult) -> None:
    """One row per query: p50, p99 and max in milliseconds, and the p99 against its target."""
    table = Table(
        title=f"ledger bench queries: {result.learners:,} learners "
        f"({result.template_learners:,} simulated x {result.copies}), "
        f"{result.certificates:,} certificates"
    )
    for column in ("query", "samples", "p50 ms", "p99 ms", "max ms", "p99 target ms"):
        table.add_column(column, justify="right")
    table.add_column("met", justify="center")
    for timed in result.latencies:
        target = timed.target_ms
        met = "" if target is None else ("yes" if timed.p99_ms <= target else "NO")
        table.add_row(
            timed.query,
            f"{timed.samples:,}",
            f"{timed.p50_ms:.2f}",
            f"{timed.p99_ms:.2f}",
            f"{timed.max_ms:.2f}",
            "" if target is None else f"{target:g}",
            met,
        )
    console.print(table)
