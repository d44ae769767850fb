"""`ledger bench projections` and `ledger bench queries`: the read side, measured.

projections: how many `ledger.events` records a second the real projection worker turns into
rows of every read model, beside two ceilings measured in the same run on the same machine:
kafka-python consuming the same records and doing nothing with them (what Kafka allows), and a
batched `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE` of as many rows into a plain
table (what PostgreSQL allows for the worker's way of writing). Each figure is the median of
`--repeat` runs, each run on fresh topics and a fresh database.

queries: p50/p99/max latency of the support queries over a realistic population of
100,000 learners, loaded straight into the read models' tables (through Kafka it would take
longer than the measurement deserves).

Both get realistic events without the intake and the relay: the inbound messages are decided
by the real handlers on an in-memory event store, and every stored event becomes the record the
relay would publish. What is measured is therefore fed exactly what production feeds it.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.sql import SQL, Composed, Identifier, Literal
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from commands.cloudevents import RejectionError, parse
from commands.handlers import handle
from ledger.application import Ledger
from ledger.broker import OutRecord, Producer, Record, end_offsets
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import (
    PROJECTIONS,
    WITHOUT_CREDENTIALS,
    Figure,
    Latency,
    Scratch,
    latency_of,
    median,
    per_process_count,
    print_figures,
    processes_label,
    raw_kafka,
    read_models,
    run_worker_processes,
    scratch,
)
from ledger.entrypoints.bench.http import time_http
from ledger.entrypoints.bench.intake import bench_messages
from ledger.entrypoints.demo.cohort import Cohort
from ledger.errors import LedgerError
from ledger.outbound import relayed_in_order, subject_of, to_record
from ledger.relay import PAGE
from ledger.settings import Services, Settings
from projections import generations
from projections.applying import apply_batch, read_batch
from projections.catalog import READ_MODELS
from projections.read_models import certificates, learner_progress, payments
from projections.read_models.eligibility import eligibility
from projections.read_models.retention import funnel
from projections.rows import Table as RowsTable
from projections.status import projection_lag

#: Messages decided per in-memory session; the intake decides batches of this order too.
SESSION_BATCH = 500
#: Records per transaction when filling read models, and rows per raw upsert: the projection
#: worker's default batch, so the baseline writes the way the worker does.
WORKER_BATCH = 2000
#: The events/s the projection layer is asked to reach on the two-core reference machine.
PROJECTIONS_TARGET = 15_000
#: Learners simulated for the queries bench; larger populations are copies of them.
TEMPLATE_LEARNERS = 2000
#: Issuing credentials may cost the projections at most a tenth of their rate.
CREDENTIALS_FLOOR = 0.9
#: The p99 the support queries are asked to stay under, in milliseconds.
QUERIES_TARGET_MS = 10.0
#: Learner-scoped columns whose values must differ between copies of a learner: the learner id
#: (every learner-scoped primary key starts with it), and the two values that are unique across
#: all learners (a certificate's id is a primary key, its verification code is what `verify`
#: looks up). Every other value may repeat across learners, as it does in real data.
RENAMED_COLUMNS = frozenset({"learner_id", "certificate_id", "verification_code"})


# Events as the relay publishes them, without intake or relay


def _page_notifications(ledger: Ledger) -> list[Any]:
    """Every stored event, in notification order (paged: the log is read like the relay does)."""
    events: list[Any] = []
    start = 1
    while True:
        page = ledger.recorder.select_notifications(start=start, limit=10_000)
        if not page:
            return events
        events.extend(ledger.mapper.to_domain_event(n) for n in page)
        start = page[-1].id + 1


def ledger_event_records(
    inbound: Sequence[OutRecord], topic: str, advance: Callable[[int], None]
) -> list[OutRecord]:
    """The records the relay would publish to `topic` once the intake had decided `inbound`.

    The messages are decided by the real handlers, in sessions of a few hundred as the intake
    decides them, on an in-memory event store; a message the intake would reject makes no event
    and is skipped. Each stored event then becomes `outbound.to_record`, under the subject the
    relay gives it: the natural id named by its aggregate's first event.
    """
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        for start in range(0, len(inbound), SESSION_BATCH):
            chunk = inbound[start : start + SESSION_BATCH]
            with ledger.session() as session:
                for record in chunk:
                    try:
                        handle(session, parse(record.value, record.headers))
                    except (RejectionError, LedgerError):
                        continue
            advance(len(chunk))
        events = _page_notifications(ledger)
    finally:
        ledger.close()
    subjects: dict[UUID, str] = {}
    records = []
    for event in events:
        if event.originator_version == 1:
            subjects[event.originator_id] = subject_of(event)
        records.append(to_record(topic, event, subjects[event.originator_id]))
    return relayed_in_order(records, PAGE)


def _messages_for(events: int, learners: int) -> int:
    """Inbound messages of `bench_messages` that make about `events` events for `learners`.

    In that mix a learner's first message also registers them (two events) and every other
    message makes one event, so a learner with m messages has about m + 1 events.
    """
    per_learner = max(3, round(events / learners) - 1)
    return learners * per_learner


# ledger bench projections


def raw_upsert(url: str, rows: int, keys: int, batch: int = WORKER_BATCH) -> Figure:
    """Upsert `rows` rows into a plain table, `batch` per transaction, as fast as PostgreSQL can.

    One `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE` per batch, the statement the
    read models write with, binary parameters as they are sent. Keys cycle over `keys` learners
    (at least a batch, so no statement meets a key twice): the first pass inserts, later ones
    update, as the worker's upserts do. The parameters are built before the clock starts.
    """
    keys = max(keys, batch)
    now = datetime.now(UTC)
    batches = []
    for start in range(0, rows, batch):
        count = min(batch, rows - start)
        batches.append(
            (
                [f"learner-{(start + n) % keys}" for n in range(count)],
                [1] * count,
                [now] * count,
                ["payment captured for ds-3, 49.00 USD"] * count,
            )
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_upsert (learner_id text PRIMARY KEY, events bigint NOT NULL,"
            " updated_at timestamptz NOT NULL, note text)"
        )
        try:
            started = time.perf_counter()
            for params in batches:
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO bench_upsert AS u (learner_id, events, updated_at, note)"
                        " SELECT * FROM unnest(%b::text[], %b::bigint[], %b::timestamptz[],"
                        " %b::text[]) ON CONFLICT (learner_id) DO UPDATE SET"
                        " events = u.events + EXCLUDED.events, updated_at = EXCLUDED.updated_at,"
                        " note = EXCLUDED.note",
                        params,
                    )
            elapsed = time.perf_counter() - started
        finally:
            conn.execute("DROP TABLE bench_upsert")
    return Figure("postgres unnest upsert, batched", rows / elapsed, elapsed, rows)


def _applied(
    cur: psycopg.Cursor[Any], schemas: Sequence[str], topic: str, ends: dict[int, int]
) -> Callable[[], int]:
    """A count of the records the slowest read model has stored its offsets past (they share
    a transaction, so all models agree; taking the minimum keeps the check honest if that
    ever changes).

    One statement for every schema, composed once: the benchmark asks many times a second,
    on the machine whose two cores the workers are measured on.
    """
    query = (
        SQL(" UNION ALL ")
        .join(
            SQL("SELECT {n}, partition, next_offset FROM {s}._offsets WHERE topic = %s").format(
                n=Literal(n), s=Identifier(schema)
            )
            for n, schema in enumerate(schemas)
        )
        .as_bytes(cur)
    )
    params = [topic] * len(schemas)

    def count() -> int:
        cur.execute(query, params)
        done = [0] * len(schemas)
        for n, partition, offset in cur.fetchall():
            done[n] += min(offset, ends.get(partition, 0))
        return min(done)

    return count


def ledger_projections(
    own: Scratch, processes: int, advance: Callable[[int], None], kind: str = PROJECTIONS
) -> Figure:
    """The real projection worker in `processes` processes (as `ledger run projections
    --processes N` runs it), from the first poll that returned records until every read model's
    stored offsets reach the end of `ledger.events`; `projection_lag` confirms the end after.
    `kind` says which read models it keeps (`bench.common.read_models`).
    """
    kafka = own.services.kafka_bootstrap
    topic = own.settings.events_topic
    ends = end_offsets(kafka, topic)
    total = sum(ends.values())
    models = read_models(kind)
    with bootstrap.connect(own.services) as conn, conn.cursor() as cur:
        schemas = [generations.live_schema(cur, m.name) for m in models]
        elapsed, _ = run_worker_processes(
            own, kind, processes, _applied(cur, schemas, topic, ends), total, advance
        )
        names = {m.name for m in models}
        behind = sum(
            lag.behind for lag in projection_lag(conn, kafka, topic) if lag.projection in names
        )
    if behind:
        raise LedgerError(f"the offsets reached the end, yet `projection_lag` says {behind} behind")
    credentials = "with credentials" if kind == PROJECTIONS else "without credentials"
    return Figure(
        f"ledger projections, {len(models)} read models ({credentials}), "
        f"{processes_label(processes)}",
        total / elapsed,
        elapsed,
        total,
    )


def without_credentials(own: Scratch, processes: int, advance: Callable[[int], None]) -> Figure:
    return ledger_projections(own, processes, advance, WITHOUT_CREDENTIALS)


def _publish(bootstrap: str, records: Sequence[OutRecord]) -> None:
    producer = Producer(bootstrap, client_id="ledger-bench")
    try:
        producer.send_all(records, timeout_s=300)
    finally:
        producer.close()


def _business_time(record: OutRecord) -> datetime:
    return datetime.fromisoformat((dict(record.headers)["ce_time"] or b"").decode())


def run_projections_bench(
    base: Settings,
    services: Services,
    events: int,
    learners: int,
    repeat: int,
    processes: int,
    console: Console,
    *,
    interleaved: bool = False,
) -> list[Figure]:
    """Kafka, PostgreSQL and the projection worker (one process, then `processes`), each the
    median of `repeat` rounds.

    The events are made once (the slow part, in memory) and published afresh each round to new
    topics; each worker run gets a fresh database, so it starts from empty read models.

    They are published as the intake stored them: each learner's events together, so a batch
    meets most learners several times and writes each of their rows once. `interleaved`
    publishes them in business-time order across learners instead, as production traffic
    arrives over months: a batch then meets most learners once, and writes more rows per event.
    """
    inbound = bench_messages("bench", _messages_for(events, learners), learners)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("deciding messages in memory", total=len(inbound))
        template = ledger_event_records(inbound, "bench", lambda n: bar.advance(task, n))
    if interleaved:  # a stable sort: each learner's events keep their order
        template.sort(key=_business_time)
        template = relayed_in_order(template, PAGE)  # as if the intake had stored them so
    console.print(
        f"{len(inbound):,} inbound messages for {learners:,} learners made {len(template):,} events"
        + (", published in business-time order" if interleaved else ", learner by learner")
    )
    kafka = services.kafka_bootstrap
    runs = sorted({1, processes})
    figures: dict[str, list[Figure]] = {"kafka": [], "postgres": []}
    for round_number in range(1, repeat + 1):
        prefix = f"bench-{secrets.token_hex(3)}."
        with scratch(base, services, prefix) as own:
            bootstrap.prepare_topics(own.settings, own.services)
            topic = own.settings.events_topic
            console.print(
                f"round {round_number}/{repeat}: publishing {len(template):,} events to {topic} "
                f"({own.settings.partitions} partitions)"
            )
            _publish(kafka, [OutRecord(topic, r.key, r.value, r.headers) for r in template])
            figures["kafka"].append(raw_kafka(kafka, topic, len(template)))
            figures["postgres"].append(
                raw_upsert(own.services.database_url, len(template), learners)
            )
        for count, figure in per_process_count(
            base,
            services,
            prefix,
            runs,
            len(template),
            "projection worker",
            ledger_projections,
            console,
        ):
            figures.setdefault(f"p{count}", []).append(figure)
        # The same worker without the credentials read model, in the same round: what issuing
        # credentials costs the pipeline (docs/credentials.md).
        for count, figure in per_process_count(
            base,
            services,
            prefix,
            [processes],
            len(template),
            "projection worker without credentials",
            without_credentials,
            console,
        ):
            figures.setdefault(f"w{count}", []).append(figure)
    keys = ("kafka", "postgres", f"w{processes}", *(f"p{n}" for n in runs))
    return [median(figures[k]) for k in keys]


def print_projections(console: Console, figures: list[Figure], learners: int, repeat: int) -> None:
    """The figures with their ratios to both ceilings, the cost of the credentials read model,
    and the verdict on the target."""
    worker = figures[-1]
    without = figures[2]
    print_figures(
        console,
        figures,
        f"ledger bench projections: {worker.count:,} events, {learners:,} learners, "
        f"median of {repeat}",
    )
    verdict = "met" if worker.per_second >= PROJECTIONS_TARGET else "NOT met"
    console.print(
        f"target >= {PROJECTIONS_TARGET:,} events/s: {verdict} ({worker.per_second:,.0f} events/s)"
    )
    ratio = worker.per_second / without.per_second
    within = "within" if ratio >= CREDENTIALS_FLOOR else "NOT within"
    console.print(
        f"with credentials: {ratio:.0%} of the rate without them, {within} "
        f"{1 - CREDENTIALS_FLOOR:.0%} ({worker.per_second:,.0f} and {without.per_second:,.0f} "
        "events/s, same processes, same rounds)"
    )


# ledger bench queries


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
