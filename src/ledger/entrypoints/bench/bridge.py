"""`ledger bench bridge`: the Open edX bridge's throughput, beside kafka-python consuming the
same Open edX topic and beside the intake handling what the bridge sent, in the same run.

The Open edX messages are made with `openedx-events`' own data classes and Avro serialization
(the [openedx] extra), Confluent-framed, with edx-event-bus-kafka's headers: per learner an
enrollment, a passing status and a grade summary for each of four courses, and an approved
identity verification. The bridge is measured from its first consumed record to its last commit
(its positions in PostgreSQL), as the intake is; then the intake, in the same database, handles
the ledger messages the bridge sent.
"""

from __future__ import annotations

import secrets
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from ledger.broker import OutRecord, Producer, end_offsets, ensure_topics
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import (
    Figure,
    Scratch,
    deleting_topics,
    intake_rate,
    median,
    processes_label,
    raw_kafka,
    scratch,
)
from ledger.entrypoints.bench.intake import ledger_intake
from ledger.settings import Services, Settings

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RUNS = [f"course-v1:BenchX+DS.{n}+2026" for n in range(1, 5)]
SPECIALIZATION = "bench-openedx"


def mapping_toml() -> str:
    lines = ['[learners]\nprefix = "edx-"\n']
    for n, run in enumerate(RUNS, start=1):
        lines.append(f'[courses."{run}"]\ncourse = "bds-{n}"\n')
        if n == 1:
            lines.append(f'specialization = "{SPECIALIZATION}"\n')
    return "".join(lines)


def openedx_messages(topic: str, learners: int) -> list[OutRecord]:
    """Realistic Open edX traffic for `learners` learners (about ten messages each)."""
    from opaque_keys.edx.keys import CourseKey  # noqa: PLC0415 - the [openedx] extra
    from openedx_events.event_bus.avro.serializer import (  # noqa: PLC0415
        serialize_event_data_to_bytes,
    )
    from openedx_events.learning import data as oe  # noqa: PLC0415
    from openedx_events.learning import signals  # noqa: PLC0415

    pii = oe.UserPersonalData(username="bench", email="bench@example.org", name="Bench")
    courses = {
        run: oe.CourseData(
            course_key=CourseKey.from_string(run),
            display_name=run,
            start=T0,
            end=T0 + timedelta(days=365),
        )
        for run in RUNS
    }
    run_id = secrets.token_hex(3)
    out: list[OutRecord] = []

    def add(signal: Any, data: dict[str, Any], user: int, time: datetime) -> None:
        value = b"\x00" + (1).to_bytes(4, "big") + serialize_event_data_to_bytes(data, signal)
        headers = [
            ("ce_type", signal.event_type.encode()),
            ("ce_id", str(uuid.uuid4()).encode()),
            ("ce_source", f"openedx/bench/{run_id}".encode()),
            ("ce_specversion", b"1.0"),
            ("ce_time", time.isoformat().encode()),
            ("content-type", b"application/avro"),
        ]
        out.append(OutRecord(topic, str(user).encode(), value, headers))

    for n in range(learners):
        user = oe.UserData(id=10_000 + n, is_active=True, pii=pii)
        day = T0 + timedelta(hours=n)
        enrollment = oe.CourseEnrollmentData(
            user=user,
            course=courses[RUNS[0]],
            mode="verified",
            is_active=True,
            creation_date=day,
            created_by=user,
        )
        add(signals.COURSE_ENROLLMENT_CREATED, {"enrollment": enrollment}, user.id, day)
        for k, run in enumerate(RUNS, start=1):
            when = day + timedelta(days=k)
            status = oe.CoursePassingStatusData(is_passing=True, course=courses[run], user=user)
            add(
                signals.COURSE_PASSING_STATUS_UPDATED,
                {"course_passing_status": status},
                user.id,
                when,
            )
            grade = oe.PersistentCourseGradeData(
                user_id=user.id,
                course=courses[run],
                course_edited_timestamp=when,
                course_version="v1",
                grading_policy_hash="h",
                percent_grade=0.8,
                letter_grade="Pass",
                passed_timestamp=when,
            )
            add(signals.PERSISTENT_GRADE_SUMMARY_CHANGED, {"grade": grade}, user.id, when)
        attempt = oe.VerificationAttemptData(
            attempt_id=n,
            user=user,
            status="approved",
            name="Bench",
            expiration_date=day + timedelta(days=700),
        )
        add(
            signals.IDV_ATTEMPT_APPROVED, {"idv_attempt": attempt}, user.id, day + timedelta(days=6)
        )
    return out


def _catalog(topic: str) -> OutRecord:
    from commands.cloudevents import structured  # noqa: PLC0415

    data = {
        "specialization_id": SPECIALIZATION,
        "title": "Bench over Open edX",
        "partners": ["Bench University"],
        "language": "en",
        "courses": ["bds-1", "bds-2", "bds-3"],
        "capstone_course_id": "bds-4",
    }
    value = structured(
        "ledger.specialization.published.v1", "urn:bench", "catalog", T0, SPECIALIZATION, data
    )
    return OutRecord(topic, SPECIALIZATION.encode(), value, [])


def _bridge(own: Scratch, processes: int, progress: Any, topic: str, expected: int) -> Figure:
    elapsed, done = intake_rate(own, "bridge", processes, topic, expected, progress)
    name = f"ledger bridge, {processes_label(processes)} (Open edX messages)"
    return Figure(name, done / elapsed, elapsed, done)


def _advance(bar: Any, task: Any) -> Callable[[int], None]:
    """A progress callback moving `task` of `bar` to the count it is given."""
    return lambda done: bar.update(task, completed=done)


def run_bridge_bench(
    base: Settings,
    services: Services,
    learners: int,
    repeat: int,
    processes: int,
    console: Console,
) -> list[Figure]:
    """Each round on fresh topics and a fresh database: kafka-python consuming the Open edX
    topic, the bridge, then the intake on what the bridge sent (medians of `repeat`)."""
    from rich.progress import Progress  # noqa: PLC0415

    kafka = services.kafka_bootstrap
    figures: dict[str, list[Figure]] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-bridge-") as directory:
        mapping = Path(directory) / "mapping.toml"
        mapping.write_text(mapping_toml())
        for round_number in range(1, repeat + 1):
            prefix = f"bench-{secrets.token_hex(3)}."
            topic = f"{prefix}openedx.learning"
            settings = base.model_copy(update={"openedx_topics": topic, "openedx_mapping": mapping})
            with scratch(settings, services, prefix) as own, deleting_topics(services, prefix):
                bootstrap.prepare_topics(own.settings, own.services)
                ensure_topics(kafka, {topic: own.settings.partitions}, {"retention.ms": "-1"})
                records = openedx_messages(topic, learners)
                console.print(
                    f"round {round_number}/{repeat}: publishing {len(records):,} Open edX "
                    f"messages for {learners:,} learners to {topic}"
                )
                producer = Producer(kafka, client_id="ledger-bench")
                try:
                    producer.send_all([_catalog(own.settings.intake_topic)])
                    producer.send_all(records, timeout_s=300)
                finally:
                    producer.close()
                figures.setdefault("kafka", []).append(raw_kafka(kafka, topic, len(records)))
                with Progress(console=console, transient=True) as bar:
                    bridging = bar.add_task("the bridge", total=len(records))
                    figures.setdefault("bridge", []).append(
                        _bridge(
                            own,
                            processes,
                            _advance(bar, bridging),
                            topic,
                            len(records),
                        )
                    )
                    sent = sum(end_offsets(kafka, own.settings.intake_topic).values())
                    deciding = bar.add_task("the intake on what it sent", total=sent)
                    figures.setdefault("intake", []).append(
                        ledger_intake(own, processes, _advance(bar, deciding), expected=sent)
                    )
    return [median(figures[k]) for k in ("kafka", "bridge", "intake")]
