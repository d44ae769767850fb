"""`ledger demo`: the launch catalog and a small cohort, through the real pipeline.

Everything goes the way a platform service would send it: CloudEvents on `ledger.intake`,
catalog first (and waited for, E0), then learners. The demo runs the workers in-process, shows
each stage catching up, and prints what support staff would see.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.broker import Producer
from ledger.cohort import CATALOG, Cohort
from ledger.errors import LedgerError
from ledger.lag import pipeline_lag
from ledger.runner import Pipeline
from ledger.settings import Settings
from ledger.stack import services
from ledger.views import render_eligibility, render_funnel
from projections import generations, retention
from projections import learner_progress as learner_progress_model
from projections.eligibility import eligibility


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
    print_summary(console, settings)


def _why_example(conn: psycopg.Connection[Any]) -> tuple[str, str] | None:
    """A learner who wants the certificate, got far, and has not got it: the question support
    staff hear most."""
    with conn.cursor() as cur:
        schema = generations.live_schema(cur, learner_progress_model.NAME)
        cur.execute(
            SQL(
                "SELECT e.learner_id, e.specialization_id FROM {s}.enrollments e"
                " WHERE e.intent = 'certificate' AND NOT EXISTS (SELECT 1 FROM {s}.certificates c"
                "  WHERE c.learner_id = e.learner_id AND c.kind = 'specialization')"
                " ORDER BY (SELECT count(*) FROM {s}.courses k WHERE k.learner_id = e.learner_id"
                "  AND k.passed) DESC, e.learner_id LIMIT 1"
            ).format(s=Identifier(schema))
        )
        row = cur.fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def print_summary(console: Console, settings: Settings) -> None:
    """The retention funnel, the totals, and one learner's "why" answer."""
    url = services.database_url(settings)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = retention.funnel(conn)
        rejected = conn.execute(
            "SELECT reason, count(*) FROM ledger_rejections GROUP BY reason ORDER BY reason"
        ).fetchall()
        stored = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
        with conn.cursor() as cur:
            schema = generations.live_schema(cur, learner_progress_model.NAME)
            cur.execute(SQL("SELECT count(*) FROM {s}.refusals").format(s=Identifier(schema)))
            refusals = cur.fetchone()
        example = _why_example(conn)
        answer = eligibility(conn, *example) if example else None
    render_funnel(console, rows)
    total = {f: sum(getattr(r, f) for r in rows) for f in retention.FIGURES}

    def rate(part: str, whole: str) -> str:
        return f"{100.0 * total[part] / total[whole]:.1f}%" if total[whole] else "-"

    console.print(
        f"All months: {total['registered']:,} enrolled, {total['completed']:,} completed: "
        f"{rate('completed', 'registered')} of all, "
        f"{rate('completed_with_intent', 'with_intent')} of those with intent, "
        f"{rate('completed_payers', 'payers')} of payers"
    )
    console.print(
        f"Events in the store: {stored[0] if stored else 0:,}; "
        f"refusals recorded in learner histories: {refusals[0] if refusals else 0:,}; "
        f"rejected messages kept: "
        f"{', '.join(f'{n} {r}' for r, n in rejected) or 'none'}"
    )
    if answer is not None:
        console.print(
            f"\n[bold]ledger learner why {answer.learner_id} {answer.specialization_id}[/bold]"
        )
        render_eligibility(console, answer)
