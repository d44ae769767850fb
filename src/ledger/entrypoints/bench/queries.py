"""`ledger bench queries`: p50/p99/max latency of the support queries over a platform-sized
population, loaded straight into the read models' tables (through Kafka it would take longer
than the measurement deserves): a template of learners decided by the real handlers and applied
by the worker's own code (`bench.ledger_events`), then copied under new ids.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import Latency, deleting_topics, latency_of, scratch
from ledger.entrypoints.bench.http import time_http
from ledger.entrypoints.bench.plans import Plan
from ledger.entrypoints.bench.plans import explain as explain_plans
from ledger.entrypoints.bench.population import check_copies, load_population
from ledger.entrypoints.bench.worker_memory import ProcessMemory, projection_worker_memory
from ledger.settings import Services, Settings
from projections import generations
from projections.read_models import certificates, learner_progress, payments
from projections.read_models.eligibility import eligibility
from projections.read_models.retention import funnel
from projections.rows import Table as RowsTable

#: Copied learners compared with their template learners after loading.
COPIES_CHECKED = 50
#: The p99 the support queries are asked to stay under, in milliseconds.
QUERIES_TARGET_MS = 10.0


@dataclass(frozen=True)
class QueriesResult:
    """What `ledger bench queries` measured, and over what population."""

    learners: int
    template_learners: int
    copies: int
    certificates: int
    load_seconds: float
    latencies: tuple[Latency, ...]
    memory: tuple[ProcessMemory, ...]
    #: Rows of copied learners found equal to their template's (`population.check_copies`).
    rows_checked: int
    plans: tuple[Plan, ...]


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


SupportQuery = Callable[[psycopg.Connection[Any]], object]


def support_queries(conn: psycopg.Connection[Any], rng: random.Random) -> dict[str, SupportQuery]:
    """The support queries (learner show, why, payments, certificate verify, retention), each
    asking over a random existing id at every call."""
    learners, enrollments, codes = _population_ids(conn)
    queries: dict[str, SupportQuery] = {
        "learner_progress(id)": lambda c: learner_progress.learner_progress(
            c, rng.choice(learners)
        ),
        "eligibility(id, specialization)": lambda c: eligibility(c, *rng.choice(enrollments)),
        "payments_of(id)": lambda c: payments.payments_of(c, rng.choice(learners)),
    }
    if codes:  # a tiny population may have earned none
        queries["certificates.verify(code)"] = lambda c: certificates.verify(c, rng.choice(codes))
    queries["retention.funnel()"] = funnel
    return queries


#: The floor every query stands on: one statement's round trip on the same connection.
SQL_ROUND_TRIP = "PostgreSQL round trip: SELECT 1"


def time_queries(
    conn: psycopg.Connection[Any], samples: int, advance: Callable[[int], None]
) -> list[Latency]:
    """Each support query `samples` times, over random existing ids, interleaved so that a
    noisy moment on the machine hits them all alike."""
    queries: dict[str, SupportQuery] = {SQL_ROUND_TRIP: lambda c: c.execute("SELECT 1").fetchone()}
    queries.update(support_queries(conn, random.Random(11)))  # noqa: S311 - not secrets
    for query in queries.values():
        for _ in range(WARM_UP_CALLS):
            query(conn)
    timings: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(samples):
        for name, query in queries.items():
            started = time.perf_counter()
            query(conn)
            timings[name].append(time.perf_counter() - started)
        advance(1)
    return [
        latency_of(name, seconds, None if name == SQL_ROUND_TRIP else QUERIES_TARGET_MS)
        for name, seconds in timings.items()
    ]


def run_queries_bench(
    base: Settings,
    services: Services,
    learners: int,
    samples: int,
    console: Console,
    *,
    explain: bool = False,
) -> QueriesResult:
    """Load a population into a scratch database's read models, check a sample of the copies,
    time the support queries on one connection (as the CLI asks them) and over HTTP (as the API
    and the console answer them), then measure the projection worker's memory on top of it."""
    prefix = f"bench-{secrets.token_hex(3)}."
    with (
        scratch(base, services, prefix) as own,
        deleting_topics(services, prefix),
        bootstrap.connect(own.services) as conn,
    ):
        started = time.perf_counter()
        template, copies = load_population(conn, learners, console)
        load_seconds = time.perf_counter() - started
        count = _count(conn, learner_progress.NAME, learner_progress.LEARNERS)
        certified = _count(conn, certificates.NAME, certificates.CERTIFICATES)
        console.print(
            f"loaded {count:,} learners ({len(template):,} simulated, x{copies}) and "
            f"{certified:,} certificates in {load_seconds:.1f} s"
        )
        compared = check_copies(conn, template, copies, COPIES_CHECKED)
        if compared:
            console.print(
                f"{COPIES_CHECKED} copied learners equal their template learners, row by row "
                f"({compared:,} rows of every learner-scoped table, ids put back)"
            )
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("timing the queries", total=samples)
            latencies = time_queries(conn, samples, lambda n: bar.advance(task, n))
            task = bar.add_task("timing the API and the console over HTTP", total=samples)
            http, api_memory = time_http(
                own, *_population_ids(conn), samples, lambda n: bar.advance(task, n)
            )
            latencies += http
        plans = (
            explain_plans(
                own.services.database_url,
                list(support_queries(conn, random.Random(5)).items()),  # noqa: S311
            )
            if explain
            else []
        )
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("projection worker applying new learners", total=None)
            worker_memory = projection_worker_memory(own, lambda n: bar.update(task, completed=n))
    return QueriesResult(
        count,
        len(template),
        copies,
        certified,
        load_seconds,
        tuple(latencies),
        (api_memory, worker_memory),
        compared,
        tuple(plans),
    )


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
    memory = Table(title=f"peak resident size with {result.learners:,} learners loaded")
    for column in ("process", "peak MiB", "having"):
        memory.add_column(column, justify="right")
    for process in result.memory:
        memory.add_row(process.process, f"{process.peak_mb:,.0f}", process.work)
    console.print(memory)
    for plan in result.plans:
        console.print(f"\n[bold]{plan.query}[/bold]: {plan.statement}", highlight=False)
        console.print(plan.plan, highlight=False, markup=False)
