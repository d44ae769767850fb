"""`ledger demo`: the launch catalog and a small cohort, through the real pipeline.

Everything goes the way a platform service would send it: CloudEvents on `ledger.intake`,
catalog first (and waited for, E0), then learners. The demo runs the workers in-process, shows
each stage catching up, and prints what support staff would see.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger.broker import Producer
from ledger.cohort import CATALOG, Cohort
from ledger.errors import LedgerError
from ledger.lag import pipeline_lag
from ledger.runner import Pipeline
from ledger.settings import Settings
from ledger.stack import services
from ledger.views import render_progress
from projections.learner_progress import LearnerProgress, learner_progress


def _wait_for_catalog(pipeline: Pipeline, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(pipeline.ledger.get_specialization(e.specialization_id) for e in CATALOG):
            return
        time.sleep(0.1)
    raise LedgerError("the catalog did not reach the ledger in time: is the intake worker up?")


def _wait_caught_up(
    console: Console, settings: Settings, pipeline: Pipeline, timeout_s: float = 300.0
) -> None:
    bootstrap = services.kafka_bootstrap(settings)
    url = services.database_url(settings)
    deadline = time.monotonic() + timeout_s
    with Progress(
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}
        while time.monotonic() < deadline:
            stages = pipeline_lag(settings, pipeline.ledger, bootstrap, url)
            for stage in stages:
                if stage.stage not in tasks:
                    tasks[stage.stage] = progress.add_task(stage.stage, total=stage.end)
                progress.update(tasks[stage.stage], completed=stage.done, total=stage.end)
            if all(s.behind == 0 for s in stages) and stages[1].end > 0:
                return
            if pipeline.crashed:
                raise LedgerError(f"a worker crashed: {pipeline.crashed}; see the log above")
            time.sleep(0.25)
    raise LedgerError("the pipeline did not catch up in time; see `ledger stack status`")


def run_demo(settings: Settings, learners: int, seed: int, console: Console) -> None:
    console.print("[bold]Enrollment ledger demo[/bold]: starting PostgreSQL and Kafka if needed")
    for status in services.up(settings):
        console.print(f"  {status.service}: {status.where} ({status.detail})")
    cohort = Cohort(learners, seed, settings.intake_topic)
    with Pipeline(settings) as pipeline:
        producer = Producer(services.kafka_bootstrap(settings), client_id="ledger-demo")
        try:
            producer.send_all(cohort.catalog())
            _wait_for_catalog(pipeline)
            console.print(
                f"Catalog of {len(CATALOG)} specializations is in the ledger; "
                f"publishing {learners} learners"
            )
            messages = cohort.learner_messages()
            producer.send_all(messages)
        finally:
            producer.close()
        console.print(f"Published {len(messages)} learner messages on {settings.intake_topic}")
        _wait_caught_up(console, settings, pipeline)
    print_summary(console, settings, learners)


def print_summary(console: Console, settings: Settings, learners: int) -> None:
    url = services.database_url(settings)
    table = Table(title="What support staff see (learner progress read model)")
    for column in ("learner", "specialization", "intent", "status", "certified", "complete"):
        table.add_column(column)
    shown: list[LearnerProgress] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for n in range(learners):
            progress = learner_progress(conn, f"learner-{n + 1:04d}")
            if progress is None:
                continue
            shown.append(progress)
            for e in progress.enrollments:
                table.add_row(
                    progress.learner_id,
                    e.title,
                    e.intent,
                    "active" if e.active else "ended",
                    f"{e.courses_certified}/{e.courses_total}",
                    f"{e.percent_complete:.0f}%",
                )
        rejected = conn.execute(
            "SELECT reason, count(*) FROM ledger_rejections GROUP BY reason ORDER BY reason"
        ).fetchall()
        stored = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
    console.print(table)
    refusals = sum(len(p.refusals) for p in shown)
    console.print(
        f"Events in the store: {stored[0] if stored else 0}; "
        f"refusals recorded in learner histories: {refusals}; "
        f"rejected messages kept: "
        f"{', '.join(f'{n} {r}' for r, n in rejected) or 'none'}"
    )
    if shown:
        example = next((p for p in shown if p.refusals), shown[0])
        console.print(f"\n[bold]ledger learner show {example.learner_id}[/bold]")
        render_progress(console, example)
