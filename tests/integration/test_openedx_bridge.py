"""The Open edX bridge on the real Kafka and PostgreSQL: Open edX events made with the
`openedx-events` package's own Avro serialization (Confluent-framed, with edx-event-bus-kafka's
headers) on an Open edX topic, `ledger run bridge openedx` and `ledger run` carrying them into
the ledger; delivered twice, nothing changes; an unmapped course and a garbage value end as
rejections with their reasons and original bytes, and the bridge carries on."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ledger.broker import OutRecord, ensure_topics
from ledger.settings import Settings
from tests import openedx_events as oe

from .helpers import (
    Publisher,
    caught_up,
    cli_env,
    ledger_cli,
    running_pipeline,
    services_of,
    specialization_stored,
    wait_for,
)
from .scenario import PUBLISHED, at

pytestmark = pytest.mark.integration

SPEC = "edx-data-science"
COURSES = [f"eds-{n}" for n in range(1, 4)]
CAPSTONE = "eds-capstone"
RUNS = {course: f"course-v1:JHUx+{course.upper()}+2026" for course in [*COURSES, CAPSTONE]}
MAPPING = "\n".join(
    [
        '[learners]\nprefix = "edx-"\n',
        *(
            f'[courses."{run}"]\ncourse = "{course}"\n'
            + (f'specialization = "{SPEC}"\n' if course == COURSES[0] else "")
            for course, run in RUNS.items()
        ),
    ]
)
T = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Bridge:
    settings: Settings
    topic: str
    log: Path


def send(
    settings: Settings, topic: str, *messages: tuple[bytes, list[tuple[str, bytes]], bytes]
) -> None:
    publisher = Publisher(settings)
    try:
        publisher.send(*(OutRecord(topic, key, value, headers) for value, headers, key in messages))
    finally:
        publisher.close()


@pytest.fixture(scope="module")
def bridge(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    """The catalog, an Open edX topic, the pipeline and the bridge running."""
    logs = tmp_path_factory.mktemp("bridge")
    topic = f"{settings.topic_prefix}openedx.learning"
    ensure_topics(services_of(settings).kafka_bootstrap, {topic: 3}, {"retention.ms": "-1"})
    (logs / "mapping.toml").write_text(MAPPING)
    env = {
        **cli_env(settings),
        "LEDGER_OPENEDX_TOPICS": topic,
        "LEDGER_OPENEDX_MAPPING": str(logs / "mapping.toml"),
    }
    catalog = {
        **PUBLISHED,
        "specialization_id": SPEC,
        "courses": COURSES,
        "capstone_course_id": CAPSTONE,
    }
    with running_pipeline(settings, logs / "run.log") as pipeline:
        publisher = Publisher(settings)
        try:
            publisher.send(
                publisher.record("ledger.specialization.published.v1", SPEC, catalog, at(0))
            )
        finally:
            publisher.close()
        wait_for(lambda: specialization_stored(settings, SPEC), 60, f"the catalog ({pipeline})")
        with (logs / "bridge.log").open("wb") as out:
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("ledger")), "run", "bridge", "openedx"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            yield Bridge(settings, topic, logs / "bridge.log")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0, (logs / "bridge.log").read_text()[-3000:]


def learner_journey(user_id: int) -> list[tuple[bytes, list[tuple[str, bytes]], bytes]]:
    """Enrolled (verified), each course passed (a passing status, then a grade summary), and
    identity verified by Open edX."""
    messages = [oe.enrolled(user_id, RUNS[COURSES[0]], "verified", T, f"enroll-{user_id}")]
    for n, (course, run) in enumerate(RUNS.items(), start=1):
        when = T + timedelta(days=n)
        messages.append(oe.passing(user_id, run, when, f"pass-{user_id}-{course}"))
        messages.append(oe.grade(user_id, run, 0.9, when, f"grade-{user_id}-{course}"))
    messages.append(oe.verified(user_id, T + timedelta(days=9), f"idv-{user_id}"))
    return messages


def shown(settings: Settings, learner: str) -> dict | None:  # type: ignore[type-arg]
    answer = ledger_cli(settings, "learner", "show", learner, "--json", check=False)
    return json.loads(answer.stdout) if answer.returncode == 0 else None


def history_length(settings: Settings, learner: str) -> int:
    answer = ledger_cli(settings, "audit", "history", learner, "--json")
    return len(json.loads(answer.stdout)["events"])


def test_an_open_edx_learner_ends_in_the_expected_ledger_state(bridge: Bridge) -> None:
    settings = bridge.settings
    send(settings, bridge.topic, *learner_journey(42))

    def complete() -> dict | None:  # type: ignore[type-arg]
        found = shown(settings, "edx-42")
        if found is None or not found["identity"]["verified"]:
            return None
        return found

    progress = wait_for(complete, 120, f"edx-42 through the bridge ({bridge.log})")
    [enrollment] = progress["enrollments"]
    assert (enrollment["specialization_id"], enrollment["intent"]) == (SPEC, "certificate")
    courses = {c["course_id"]: c for c in enrollment["courses"]}
    assert all(courses[c]["passed"] and courses[c]["grade"] == "0.9000" for c in COURSES)
    assert not any(c["paid"] for c in courses.values())  # payments come from elsewhere
    # Nothing is paid, so no course is certified, and the rules refuse the capstone's grade
    # (K2): the bridge translated, the ledger decided.
    assert not courses[CAPSTONE]["passed"]
    assert any(r["subject"] == CAPSTONE for r in progress["refusals"])
    history = json.loads(ledger_cli(settings, "audit", "history", "edx-42", "--json").stdout)
    assert json.dumps(history).count("ada@example.org") == 0  # no personal data crossed

    # Delivered again (Kafka delivers at least once): the intake finds what it accepted.
    before = history_length(settings, "edx-42")
    send(settings, bridge.topic, *learner_journey(42))
    wait_for(
        lambda: bridged(settings, bridge.topic) >= 2 * len(learner_journey(42)),
        120,
        f"the bridge to read the second delivery ({bridge.log})",
    )
    wait_for(lambda: caught_up(settings), 120, "the intake to handle what the bridge sent")
    assert history_length(settings, "edx-42") == before


def bridged(settings: Settings, topic: str) -> int:
    """How many records of the Open edX topic the bridge has committed it handled."""
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT next_offset FROM ledger_intake_positions WHERE topic = %s", (topic,)
        ).fetchall()
    return sum(int(o) for (o,) in rows)


def test_what_the_bridge_cannot_translate_is_kept_with_its_reason(bridge: Bridge) -> None:
    settings = bridge.settings
    value, headers, key = oe.enrolled(43, "course-v1:Other+X+2026", "verified", T, "enroll-x")
    garbage_headers = [
        (k, v) for k, v in oe.enrolled(43, RUNS[COURSES[0]], "verified", T, "garbage")[1]
    ]
    send(
        settings,
        bridge.topic,
        (value, headers, key),
        (b"\x00\x00\x00\x00\x07garbage", garbage_headers, b"43"),
    )
    send(settings, bridge.topic, oe.enrolled(44, RUNS[COURSES[0]], "audit", T, "enroll-44"))
    wait_for(lambda: shown(settings, "edx-44"), 120, f"edx-44 after the bad ones ({bridge.log})")
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT reason, message, message_source, message_id, value FROM ledger_rejections "
            "WHERE topic = %s ORDER BY rejection_id",
            (bridge.topic,),
        ).fetchall()
    by_id = {row[3]: row for row in rows}
    unmapped = by_id[oe.event_id("enroll-x")]
    assert unmapped[0] == "unmapped_course" and "course-v1:Other+X+2026" in unmapped[1]
    assert unmapped[2] == "urn:openedx:openedx/lms/web" and bytes(unmapped[4]) == value
    garbage = by_id[oe.event_id("garbage")]
    assert garbage[0] == "not_avro" and bytes(garbage[4]) == b"\x00\x00\x00\x00\x07garbage"
    assert shown(settings, "edx-43") is None
