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
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ledger.broker import Producer
from ledger.entrypoints import bootstrap
from ledger.entrypoints.demo.cohort import CATALOG, Cohort
from ledger.entrypoints.lag import pipeline_lag
from ledger.entrypoints.runner import Pipeline
from ledger.entrypoints.views import render_eligibility, render_funnel
from ledger.errors import LedgerError
from ledger.settings import Services, Settings
from ledger.stack import services as stack_services
from projections import generations
from projections.read_models import learner_progress as learner_progress_model
from projections.read_models import retention
from projections.read_models.eligibility import eligibility


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
            stages = pipeline_lag(settings, pipeline.services, pipeline.ledger, pipeline.shards[1:])
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
    for status in stack_services.up(settings):
        console.print(f"  {status.service}: {status.where} ({status.detail})")
    cohort = Cohort(learners, seed, settings.intake_topic)
    found = bootstrap.services(settings)
    bootstrap.prepare_database(found)
    earlier = _events_stored(found)
    if earlier:
        console.print(
            f"[yellow]This ledger already holds {earlier:,} events[/yellow] (an earlier demo?): "
            "the cohort is added to them, the same learner ids get a second round of messages, "
            "and the figures below count everything. For the demo's own figures start from "
            "nothing: `make clean demo` (or `ledger stack down`, remove "
            f"{settings.state_path}, and run the demo again)."
        )
    with Pipeline(settings, found) as pipeline:
        producer = Producer(found.kafka_bootstrap, client_id="ledger-demo")
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
    example = print_summary(console, found)
    print_next_steps(console, settings, example)


def _events_stored(services: Services) -> int:
    with bootstrap.connect(services) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
    return int(row[0]) if row else 0


def print_next_steps(console: Console, settings: Settings, example: tuple[str, str] | None) -> None:
    """What to try next, and what is still running: the demo leaves the stack up."""
    learner, spec = example or ("learner-0042", "jhu-data-science")
    console.print("\n[bold]Try next[/bold]")
    for command, what in (
        (f"ledger learner show {learner}", "where this learner is"),
        (f"ledger learner why {learner} {spec}", "what is missing for the certificate"),
        ("ledger stats retention", "the funnel again (--json for JSON Lines)"),
        (f"ledger audit history {learner}", "the learner's history, as auditors see it"),
        ("ledger audit verify", "hash chains, the event log and the read models checked"),
        (
            "ledger tokens create --name me --role support --role auditor",
            "a staff token for the API and the console (shown once)",
        ),
        (
            "ledger run api",
            f"the API and the support console: http://{settings.api_host}:{settings.api_port}"
            "/console (sign in with the token), /docs",
        ),
    ):
        # A command on a line of its own, what it does indented below: a grid of two columns
        # squeezed the descriptions into a few characters on an 80-column terminal.
        console.print(command, style="bold", markup=False, highlight=False, soft_wrap=True)
        console.print(Padding(Text(what), (0, 0, 0, 4)))
    console.print(
        "\nPostgreSQL and Kafka are still running (`ledger stack status`); "
        "`ledger stack down` stops them, and the data stays in "
        f"{settings.state_path} for next time (`make clean` removes it)."
    )


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


def print_summary(console: Console, services: Services) -> tuple[str, str] | None:
    """The retention funnel, the totals, and one learner's "why" answer (whose, returned)."""
    url = services.database_url
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
    return example
