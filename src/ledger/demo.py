"""`ledger demo`: the launch catalog and a small cohort, through the real pipeline.

Everything goes the way a platform service would send it: CloudEvents on `ledger.intake`,
catalog first (and waited for, E0), then learners. The demo runs the workers in-process, shows
each stage catching up, and prints what support staff would see.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from commands.cloudevents import structured
from ledger.broker import OutRecord, Producer
from ledger.errors import LedgerError
from ledger.lag import pipeline_lag
from ledger.runner import Pipeline
from ledger.settings import Settings
from ledger.stack import services
from ledger.views import render_progress
from projections.learner_progress import LearnerProgress, learner_progress

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class CatalogEntry:
    specialization_id: str
    title: str
    partners: tuple[str, ...]
    courses: tuple[str, ...]
    capstone: str


#: The three specializations of the launch announcement.
CATALOG = (
    CatalogEntry(
        "jhu-data-science",
        "Data Science",
        ("Johns Hopkins University",),
        (
            "ds-toolbox",
            "ds-r-programming",
            "ds-getting-cleaning-data",
            "ds-exploratory-analysis",
            "ds-reproducible-research",
            "ds-statistical-inference",
            "ds-regression-models",
            "ds-practical-machine-learning",
            "ds-data-products",
        ),
        "ds-capstone",
    ),
    CatalogEntry(
        "android-app-development",
        "Android App Development",
        ("Vanderbilt University", "University of Maryland, College Park"),
        (
            "android-handheld-1",
            "android-handheld-2",
            "android-concurrency",
            "android-communication",
            "android-cloud-services",
        ),
        "android-capstone",
    ),
    CatalogEntry(
        "cet-effective-teaching",
        "Foundations of Effective Teaching",
        ("Commonwealth Education Trust",),
        (
            "teach-introduction",
            "teach-being-a-teacher",
            "teach-learners-and-learning",
            "teach-planning",
            "teach-curriculum",
            "teach-assessment",
            "teach-classroom-practice",
            "teach-being-a-professional",
        ),
        "teach-capstone",
    ),
)


class Cohort:
    """Builds the demo's messages, deterministically from a seed."""

    def __init__(self, learners: int, seed: int, topic: str) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
        self.learners = learners
        self.topic = topic
        self.run_id = f"{seed}-{int(time.time())}"
        self._count = 0

    def _record(
        self, event_type: str, when: datetime, subject: str, data: dict[str, Any]
    ) -> OutRecord:
        self._count += 1
        value = structured(
            event_type,
            "urn:demo:platform",
            f"demo-{self.run_id}-{self._count}",
            when,
            subject,
            data,
        )
        return OutRecord(
            self.topic, subject.encode(), value, [("content-type", b"application/cloudevents+json")]
        )

    def catalog(self) -> list[OutRecord]:
        return [
            self._record(
                "ledger.specialization.published.v1",
                START - timedelta(days=30),
                entry.specialization_id,
                {
                    "specialization_id": entry.specialization_id,
                    "title": entry.title,
                    "partners": list(entry.partners),
                    "language": "en",
                    "courses": list(entry.courses),
                    "capstone_course_id": entry.capstone,
                },
            )
            for entry in CATALOG
        ]

    def learner_messages(self) -> list[OutRecord]:
        """Each learner's messages, in the order the platform's services would send them."""
        records: list[OutRecord] = []
        for n in range(self.learners):
            records.extend(self._learner(n, f"learner-{n + 1:04d}", CATALOG[n % len(CATALOG)]))
        # One message no service should send: it is kept with its reason, not lost.
        records.append(
            OutRecord(self.topic, b"learner-0001", b'{"specversion": "1.0", "id": 7', [])
        )
        return records

    def _learner(self, n: int, learner: str, entry: CatalogEntry) -> list[OutRecord]:
        rng = self.rng
        out: list[OutRecord] = []

        def send(event_type: str, when: datetime, **data: Any) -> None:
            out.append(self._record(event_type, when, learner, {"learner_id": learner, **data}))

        when = START + timedelta(days=rng.randint(0, 60), minutes=n)
        intent = "certificate" if rng.random() < 0.4 else "audit"
        spec = entry.specialization_id
        send("ledger.learner.enrolled.v1", when, specialization_id=spec, intent=intent)
        # Those who state an intent to earn a certificate pay far more often; payers persist.
        payer = rng.random() < (0.6 if intent == "certificate" else 0.1)
        all_courses = [*entry.courses, entry.capstone]
        if payer:
            reach = rng.choice([2, len(all_courses), len(all_courses), len(all_courses)])
            send("ledger.identity.verified.v1", when + timedelta(days=1), method="government_id")
        else:
            reach = rng.choice([0, 0, 0, 1, 1, 2, 3])
        for index, course in enumerate(all_courses[:reach]):
            if payer:
                send(
                    "ledger.payment.captured.v1",
                    when + timedelta(hours=2),
                    payment_id=f"pay-{self.run_id}-{learner}-{index}",
                    course_id=course,
                    amount="49.00",
                    currency="USD",
                )
            when += timedelta(days=rng.randint(20, 45))
            grade = round(rng.uniform(0.72 if payer else 0.55, 1.0), 2)
            send(
                "ledger.course.graded.v1",
                when,
                course_id=course,
                grade=str(grade),
                passed=grade >= 0.7,
            )
        if intent == "audit" and reach >= 2:
            send(
                "ledger.learner.intent_changed.v1",
                when + timedelta(hours=1),
                specialization_id=spec,
                intent="certificate",
            )
        if n % 7 == 3:  # a second enrollment request: the rules say no, and say why
            send(
                "ledger.learner.enrolled.v1",
                when + timedelta(hours=2),
                specialization_id=spec,
                intent="certificate",
            )
        if payer and n % 5 == 1:  # a refund asked for long after the window closed
            send(
                "ledger.payment.refund_requested.v1",
                when + timedelta(days=30),
                payment_id=f"pay-{self.run_id}-{learner}-0",
            )
        return out


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
