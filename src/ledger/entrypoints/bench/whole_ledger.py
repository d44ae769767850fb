"""`ledger bench verify`: how long an auditor waits for `ledger audit verify` over a whole
ledger, and an operator for `ledger projections rebuild`, beside raw Kafka.

A ledger of its own is filled through the real pipeline (`ledger run`'s workers in this
process): the intake benchmark's realistic mix of messages, stored, relayed and projected.
Then, with the workers stopped, three things read the same records of `ledger.events`:
kafka-python as released, consuming them and doing nothing (the ceiling Kafka sets); every
read model rebuilt from them into scratch tables (in one process, then with the partitions
shared out, as `--processes` does); and `ledger audit verify` with all three checks (hash
chains, the log against the store, the read models against a rebuild). Rates are events per
second; each run is on the same topic, so the ratios to raw Kafka mean something on a noisy
machine.
"""

from __future__ import annotations

import secrets
import time

import psycopg
from rich.console import Console

from ledger.audit.verify import verify
from ledger.broker import Producer, end_offsets
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import (
    Figure,
    deleting_topics,
    median,
    processes_label,
    quiet_after_filling,
    raw_kafka,
    scratch,
    settle,
)
from ledger.entrypoints.bench.intake import bench_messages
from ledger.entrypoints.pipeline_stages import Stages, wait_settled
from ledger.entrypoints.runner import Pipeline
from ledger.errors import LedgerError
from ledger.settings import Services, Settings
from projections import generations
from projections.catalog import READ_MODELS
from projections.rebuild import rebuild_models

#: What each rate is asked to reach (events/s).
VERIFY_TARGET = 10_000
REBUILD_TARGET = 30_000


def run_verify_bench(
    base: Settings,
    services: Services,
    messages: int,
    learners: int,
    processes: int,
    console: Console,
    repeat: int = 3,
) -> list[Figure]:
    """Fill a ledger of its own, then measure raw Kafka, the rebuilds and `audit verify`, each
    the median of `repeat` rounds over that same ledger (filling it is the slow part; a single
    rebuild of a few seconds varied by a third from one run to the next)."""
    prefix = f"bench-{secrets.token_hex(3)}."
    with scratch(base, services, prefix) as own, deleting_topics(services, prefix):
        settings, where = own.settings, own.services
        bootstrap.prepare_topics(settings, where)
        records = bench_messages(settings.intake_topic, messages, learners)
        console.print(
            f"filling a ledger: {len(records):,} messages for {learners:,} learners through "
            "the pipeline"
        )
        with Pipeline(settings, where) as pipeline:
            producer = Producer(where.kafka_bootstrap, client_id="ledger-bench")
            try:
                producer.send_all(records[:1])
                time.sleep(1.0)  # the catalog first, as a platform publishes it
                producer.send_all(records[1:], timeout_s=600)
            finally:
                producer.close()

            def say(stages: Stages) -> None:
                console.print(
                    f"  intake {stages.intake_done:,} of {stages.intake_end:,}, "
                    f"{stages.stored:,} events stored, projections {stages.projections_behind:,}"
                    " behind"
                )

            settled = wait_settled(own, time.monotonic() + 1800, say)
            if pipeline.crashed or not settled:
                raise LedgerError(f"the pipeline did not catch up (crashed: {pipeline.crashed})")
        events = sum(end_offsets(where.kafka_bootstrap, settings.events_topic).values())
        console.print(f"{events:,} events on {settings.events_topic}; measuring")
        quiet_after_filling(where)
        rounds: list[list[Figure]] = []
        for round_number in range(1, repeat + 1):
            figures = [raw_kafka(where.kafka_bootstrap, settings.events_topic, events)]
            for count in sorted({1, processes}):
                settle(where)
                figures.append(_rebuild(settings, where, count))
            settle(where)
            figures.append(_verify(settings, where, processes))
            console.print(
                f"round {round_number}/{repeat}: "
                + ", ".join(f"{f.name} {f.per_second:,.0f}/s" for f in figures)
            )
            rounds.append(figures)
    return [median([r[n] for r in rounds]) for n in range(len(rounds[0]))]


def _rebuild(settings: Settings, where: Services, processes: int) -> Figure:
    started = time.perf_counter()
    results = rebuild_models(
        where.database_url,
        where.kafka_bootstrap,
        settings.events_topic,
        READ_MODELS,
        switch=False,
        processes=processes,
    )
    seconds = time.perf_counter() - started
    with psycopg.connect(where.database_url, autocommit=True) as conn:
        for result in results:
            generations.drop(conn, result.generation)
    records = results[0].records
    name = f"projections rebuild, {len(READ_MODELS)} read models, {processes_label(processes)}"
    return Figure(name, records / seconds, seconds, records)


def _verify(settings: Settings, where: Services, processes: int) -> Figure:
    ledger = bootstrap.open_ledger(where)
    try:
        report = verify(ledger, settings, where, processes=processes)
    finally:
        ledger.close()
    if not report.ok:
        raise LedgerError(f"audit verify found {len(report.mismatches)} mismatch(es)")
    return Figure(
        f"audit verify, all three checks, {processes_label(processes)}",
        report.events_per_second,
        report.seconds,
        report.events,
    )
