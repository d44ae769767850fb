"""`ledger bench projections`: how many `ledger.events` records a second the real projection
worker turns into rows of every read model.

Beside it, two ceilings measured in the same run on the same machine: kafka-python consuming the
same records and doing nothing with them (what Kafka allows), and a batched
`INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE` of as many rows into a plain table
(what PostgreSQL allows for the worker's way of writing); and the worker as it would be
without credentials (`bench.common.read_models`), for what issuing them costs. Each figure is
the median of `--repeat` rounds, each on fresh topics and fresh databases.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier, Literal
from rich.console import Console
from rich.progress import Progress

from ledger.broker import OutRecord, end_offsets
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import (
    PROJECTIONS,
    WITHOUT_CREDENTIALS,
    Figure,
    Scratch,
    deleting_topics,
    median,
    per_process_count,
    print_figures,
    processes_label,
    raw_kafka,
    read_models,
    run_worker_processes,
    scratch,
    time_batches,
)
from ledger.entrypoints.bench.intake import bench_messages
from ledger.entrypoints.bench.ledger_events import (
    WORKER_BATCH,
    ledger_event_records,
    messages_for,
    publish,
)
from ledger.errors import LedgerError
from ledger.outbound import relayed_in_order
from ledger.relay import PAGE
from ledger.settings import Services, Settings
from projections import generations
from projections.status import projection_lag

#: The events/s the projection layer is asked to reach on the two-core reference machine.
PROJECTIONS_TARGET = 15_000
#: Issuing credentials may cost the projections at most a tenth of their rate.
CREDENTIALS_FLOOR = 0.9


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
    elapsed = time_batches(
        url,
        "bench_upsert",
        (
            "CREATE TABLE bench_upsert (learner_id text PRIMARY KEY, events bigint NOT NULL,"
            " updated_at timestamptz NOT NULL, note text)",
        ),
        "INSERT INTO bench_upsert AS u (learner_id, events, updated_at, note)"
        " SELECT * FROM unnest(%b::text[], %b::bigint[], %b::timestamptz[], %b::text[])"
        " ON CONFLICT (learner_id) DO UPDATE SET events = u.events + EXCLUDED.events,"
        " updated_at = EXCLUDED.updated_at, note = EXCLUDED.note",
        batches,
    )
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


def _business_time(record: OutRecord) -> datetime:
    return datetime.fromisoformat((dict(record.headers)["ce_time"] or b"").decode())


@dataclass(frozen=True)
class ProjectionsResult:
    """The medians (kafka, postgres, without credentials, then the worker with them per process
    count), and each round's rate with credentials over the rate without, same processes."""

    figures: list[Figure]
    credential_ratios: list[float]

    @property
    def credential_ratio(self) -> float:
        """The figure with credentials over the figure without: both medians of the same
        rounds, as the table shows them. A round's own ratio carries both runs' noise (each
        run is about five seconds on a shared machine, about 10% either way), so the verdict
        stands on the medians; the rounds' ratios are printed beside it."""
        return self.figures[-1].per_second / self.figures[2].per_second


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
) -> ProjectionsResult:
    """Kafka, PostgreSQL and the projection worker (one process, then `processes`), each the
    median of `repeat` rounds.

    The events are made once (the slow part, in memory) and published afresh each round to new
    topics; each worker run gets a fresh database, so it starts from empty read models.

    They are published as the intake stored them: each learner's events together, so a batch
    meets most learners several times and writes each of their rows once. `interleaved`
    publishes them in business-time order across learners instead, as production traffic
    arrives over months: a batch then meets most learners once, and writes more rows per event.

    The cost of credentials is judged round by round: the worker with them and without them
    run back to back on the same records, the one that goes first alternating, so
    neither always meets the other's leftovers (a checkpoint, autovacuum) or a quieter moment.
    """
    inbound = bench_messages("bench", messages_for(events, learners), learners)
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
    figures: dict[str, list[Figure]] = {"kafka": [], "postgres": []}
    ratios: list[float] = []
    for round_number in range(1, repeat + 1):
        prefix = f"bench-{secrets.token_hex(3)}."
        with deleting_topics(services, prefix):
            with scratch(base, services, prefix) as own:
                bootstrap.prepare_topics(own.settings, own.services)
                topic = own.settings.events_topic
                console.print(
                    f"round {round_number}/{repeat}: publishing {len(template):,} events to "
                    f"{topic} ({own.settings.partitions} partitions)"
                )
                publish(kafka, [OutRecord(topic, r.key, r.value, r.headers) for r in template])
                figures["kafka"].append(raw_kafka(kafka, topic, len(template)))
                figures["postgres"].append(
                    raw_upsert(own.services.database_url, len(template), learners)
                )

            def run(kind: str, counts: list[int], prefix: str = prefix) -> dict[int, Figure]:
                label = "projection worker" + (
                    " without credentials" if kind != PROJECTIONS else ""
                )
                measure = ledger_projections if kind == PROJECTIONS else without_credentials
                return dict(
                    per_process_count(
                        base, services, prefix, counts, len(template), label, measure, console
                    )
                )

            if processes != 1:
                figures.setdefault("p1", []).append(run(PROJECTIONS, [1])[1])
            pair = [PROJECTIONS, WITHOUT_CREDENTIALS]
            if round_number % 2 == 0:
                pair.reverse()
            measured = {kind: run(kind, [processes])[processes] for kind in pair}
            with_them, without = measured[PROJECTIONS], measured[WITHOUT_CREDENTIALS]
            figures.setdefault(f"p{processes}", []).append(with_them)
            figures.setdefault(f"w{processes}", []).append(without)
        ratios.append(with_them.per_second / without.per_second)
        console.print(
            f"round {round_number}/{repeat}: with credentials {with_them.per_second:,.0f}/s, "
            f"without {without.per_second:,.0f}/s ({ratios[-1]:.0%}; "
            f"{' first, then '.join('with' if k == PROJECTIONS else 'without' for k in pair)})"
        )
    runs = sorted({1, processes})
    keys = ("kafka", "postgres", f"w{processes}", *(f"p{n}" for n in runs))
    return ProjectionsResult([median(figures[k]) for k in keys], ratios)


def print_projections(
    console: Console, result: ProjectionsResult, learners: int, repeat: int
) -> None:
    """The figures with their ratios to both ceilings, the cost of the credentials read model,
    and the verdict on the target."""
    figures = result.figures
    worker = figures[-1]
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
    ratio = result.credential_ratio
    within = "within" if ratio >= CREDENTIALS_FLOOR else "NOT within"
    rounds = ", ".join(f"{r:.0%}" for r in result.credential_ratios)
    console.print(
        f"with credentials: {ratio:.0%} of the rate without them ({worker.per_second:,.0f} and "
        f"{figures[2].per_second:,.0f} events/s, medians of the same rounds), {within} "
        f"{1 - CREDENTIALS_FLOOR:.0%}; round by round: {rounds}"
    )
