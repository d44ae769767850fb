"""Through the whole pipeline on real Kafka and PostgreSQL: intake, store, relay, projection."""

from __future__ import annotations

import json

import psycopg
import pytest

from ledger.broker import Record, end_offsets
from ledger.entrypoints.runner import Pipeline
from ledger.settings import Settings
from projections.read_models.learner_progress import learner_progress

from .helpers import Publisher, ledger_cli, read_topic, services_of, wait_for
from .scenario import DS, PUBLISHED, at, enrolled, graded

pytestmark = pytest.mark.integration


def progress_of(settings: Settings, learner: str):
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        return learner_progress(conn, learner)


def test_messages_flow_from_intake_to_the_read_model(
    settings: Settings, publisher: Publisher
) -> None:
    grade_1 = publisher.record(
        "ledger.course.graded.v1", "ada", graded("ada", "ds-1"), at(20), message_id="grade-1"
    )
    with Pipeline(settings, services_of(settings)) as pipeline:
        publisher.send(publisher.record("ledger.specialization.published.v1", DS, PUBLISHED, at(0)))
        wait_for(lambda: pipeline.ledger.get_specialization(DS), what="the catalog")
        publisher.send(
            publisher.record(
                "ledger.learner.enrolled.v1", "ada", enrolled("ada"), at(1), binary=True
            ),
            grade_1,
            grade_1,  # redelivered: a duplicate, changes nothing
            publisher.record(
                "ledger.payment.captured.v1",
                "ada",
                {
                    "learner_id": "ada",
                    "payment_id": "p-1",
                    "course_id": "ds-1",
                    "amount": "49.00",
                    "currency": "USD",
                },
                at(21),
            ),
            publisher.record(
                "ledger.identity.verified.v1",
                "ada",
                {"learner_id": "ada", "method": "government_id"},
                at(22),
                binary=True,
            ),
            publisher.record(
                "ledger.course.graded.v1",
                "ada",
                graded("ada", "ds-2", "0.4", passed=False),
                at(30),
                binary=True,
            ),
            publisher.record("ledger.learner.enrolled.v1", "ada", enrolled("ada"), at(31)),
        )
        # The same id with other content is a conflict; bytes that are not JSON are kept too.
        conflicting = publisher.record(
            "ledger.course.graded.v1",
            "ada",
            graded("ada", "ds-1", "0.2", passed=False),
            at(20),
            message_id="grade-1",
        )
        bad = publisher.record("ledger.course.graded.v1", "ada", {}, at(1))
        bad = type(bad)(bad.topic, bad.key, b"\x00 not json", bad.headers)
        publisher.send(conflicting, bad)

        def projected():
            p = progress_of(settings, "ada")
            return p if p and p.refusals and len(p.enrollments) == 1 else None

        progress = wait_for(projected, what="ada's progress in the read model")
        recorder = pipeline.ledger.ledger_recorder
        wait_for(lambda: recorder.max_rejection_id() >= 2, what="two rejections")
        wait_for(
            lambda: recorder.relay_position("rejections") >= recorder.max_rejection_id(),
            what="the relay to publish the rejections",
        )

    enrollment = progress.enrollments[0]
    assert enrollment.specialization_id == DS
    assert enrollment.title == "Data Science"
    assert enrollment.curriculum_version == 1
    assert enrollment.intent == "certificate"
    states = {c.course_id: c for c in enrollment.courses}
    assert states["ds-1"].passed and str(states["ds-1"].grade) == "0.9"
    assert states["ds-1"].paid_by == ["p-1"]
    assert states["ds-1"].certified and states["ds-1"].certified_at == at(22)
    assert states["ds-2"].grade is not None and not states["ds-2"].passed
    assert not states["ds-2"].certified
    assert states["ds-capstone"].is_capstone
    assert enrollment.courses_certified == 1
    assert enrollment.percent_complete == 10.0
    assert progress.identity.verified
    assert enrollment.certificate is None
    assert [r.reason for r in progress.refusals] == ["already_enrolled"]

    # The CLI answers from the same read model.
    shown = json.loads(ledger_cli(settings, "learner", "show", "ada", "--json").stdout)
    assert shown == json.loads(progress.model_dump_json())

    # ledger.events carries ada's history once, in order, as binary-mode CloudEvents.
    bootstrap = services_of(settings).kafka_bootstrap
    everything = sum(end_offsets(bootstrap, settings.events_topic).values())
    records = read_topic(settings, settings.events_topic, expect=everything)
    ada = [r for r in records if r.header("ce_subject") == "ada"]
    assert [r.header("ce_type") for r in ada] == [
        "ledger.learner.registered.v2",
        "ledger.learner.enrolled.v1",
        "ledger.learner.course_graded.v1",
        "ledger.learner.course_paid.v1",
        "ledger.learner.identity_verified.v1",
        "ledger.learner.course_certified.v1",
        "ledger.learner.course_graded.v1",
        "ledger.learner.request_refused.v1",
    ]
    assert [r.header("ce_sequence") for r in ada] == [str(n) for n in range(1, 9)]
    assert len({r.partition for r in ada}) == 1
    assert ada[1].header("ce_time") == at(1).isoformat()

    # Rejected input is kept whole, with its reason, in the table and on ledger.rejections.
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT reason, value FROM ledger_rejections WHERE key = 'ada' ORDER BY rejection_id"
        ).fetchall()
    assert [r[0] for r in rows] == ["conflict", "not_json"]
    assert rows[1][1] == b"\x00 not json"
    rejected = read_topic(
        settings,
        settings.rejections_topic,
        expect=sum(end_offsets(bootstrap, settings.rejections_topic).values()),
    )
    ada_rejected = [r for r in rejected if r.key == b"ada"]
    assert sorted(r.header("ledger_reason") or "" for r in ada_rejected) == [
        "conflict",
        "not_json",
    ]
    said_as_kafka_connect_says_it(ada_rejected, settings.intake_topic)


def said_as_kafka_connect_says_it(records: list[Record], intake_topic: str) -> None:
    """Dead letters in Kafka Connect's terms too, for the tools operators read them with."""
    assert records
    for record in records:
        _connect_headers(record, intake_topic)


def _connect_headers(record: Record, intake_topic: str) -> None:
    origin = (record.header("ledger_origin") or "").rsplit("/", 2)
    assert [
        record.header("__connect.errors.topic"),
        record.header("__connect.errors.partition"),
        record.header("__connect.errors.offset"),
    ] == origin
    assert origin[0] == intake_topic
    assert record.header("__connect.errors.connector.name") == "ledger-intake"
    assert record.header("__connect.errors.exception.class.name") == (
        "commands.cloudevents.RejectionError"
    )
    message = record.header("__connect.errors.exception.message") or ""
    assert message.startswith(f"{record.header('ledger_reason')}: ")


def test_unknown_learner_gives_a_clear_answer(settings: Settings) -> None:
    result = ledger_cli(settings, "learner", "show", "nobody", check=False)
    assert result.returncode == 4
    assert "not known" in result.stderr
