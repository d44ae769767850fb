"""The support staff's read API and `/metrics`, through a real HTTP client against a running
`ledger run api`, while `ledger run` (intake, relay, projections) carries a small scenario
with known answers through the pipeline: grace completes a specialization, linus has a payment
refunded (so a course he passed is no longer paid), and nobody else is known.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from ledger.broker import OutRecord, end_offsets
from ledger.settings import Settings

from .helpers import (
    REPO,
    Publisher,
    caught_up,
    running_pipeline,
    services_of,
    specialization_stored,
    wait_for,
)
from .scenario import PUBLISHED, at, graded

pytestmark = pytest.mark.integration


SPEC = "http-read-api"
COURSES = ["hra-1", "hra-2", "hra-3"]
CAPSTONE = "hra-capstone"
CATALOG = {
    **PUBLISHED,
    "specialization_id": SPEC,
    "title": "Reading the Ledger",
    "courses": COURSES,
    "capstone_course_id": CAPSTONE,
}
UNKNOWN = "nobody-at-all"


def enrolled(learner: str) -> dict[str, str]:
    return {"learner_id": learner, "specialization_id": SPEC, "intent": "certificate"}


def payment(learner: str, payment_id: str, course: str) -> dict[str, str]:
    return {
        "learner_id": learner,
        "payment_id": payment_id,
        "course_id": course,
        "amount": "49.00",
        "currency": "USD",
    }


def grace_completes(publisher: Publisher) -> list[OutRecord]:
    """Verified, then each course and the capstone passed and paid: a specialization certificate."""
    records = [
        publisher.record("ledger.learner.enrolled.v1", "grace", enrolled("grace"), at(1)),
        publisher.record(
            "ledger.identity.verified.v1",
            "grace",
            {"learner_id": "grace", "method": "government_id"},
            at(2),
        ),
    ]
    for n, course in enumerate([*COURSES, CAPSTONE], start=3):
        records += [
            publisher.record("ledger.course.graded.v1", "grace", graded("grace", course), at(n)),
            publisher.record(
                "ledger.payment.captured.v1",
                "grace",
                payment("grace", f"grace-{course}", course),
                at(n),
            ),
        ]
    return records


def linus_is_refunded(publisher: Publisher) -> list[OutRecord]:
    """hra-1 passed and paid, then refunded (no certificate yet: P4 grants it); hra-2 paid."""
    return [
        publisher.record("ledger.learner.enrolled.v1", "linus", enrolled("linus"), at(1)),
        publisher.record("ledger.course.graded.v1", "linus", graded("linus", "hra-1"), at(3)),
        publisher.record(
            "ledger.payment.captured.v1", "linus", payment("linus", "linus-1", "hra-1"), at(4)
        ),
        publisher.record(
            "ledger.payment.refund_requested.v1",
            "linus",
            {"learner_id": "linus", "payment_id": "linus-1"},
            at(5),
        ),
        publisher.record(
            "ledger.payment.captured.v1", "linus", payment("linus", "linus-2", "hra-2"), at(6)
        ),
    ]


@pytest.fixture(scope="module")
def pipeline(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`ledger run` in a process of its own, as in production; yields its log's path."""
    with running_pipeline(settings, tmp_path_factory.mktemp("pipeline") / "run.log") as log:
        yield log


@pytest.fixture(scope="module")
def scenario(settings: Settings, pipeline: Path) -> None:
    """Publish the scenario (catalog first, E0) and wait until every stage has caught up."""
    publisher = Publisher(settings)
    try:
        publisher.send(publisher.record("ledger.specialization.published.v1", SPEC, CATALOG, at(0)))
        wait_for(
            lambda: specialization_stored(settings, SPEC), 60, f"the catalog (log: {pipeline})"
        )
        not_json = dataclasses.replace(
            publisher.record("ledger.course.graded.v1", "linus", {}, at(7)), value=b"\x00 oops"
        )
        publisher.send(*grace_completes(publisher), *linus_is_refunded(publisher), not_json)
    finally:
        publisher.close()
    wait_for(
        lambda: caught_up(settings), 120, f"intake, relay and projections to catch up ({pipeline})"
    )


@pytest.mark.usefixtures("scenario")
def test_support_staff_read_progress_eligibility_certificates_payments_and_retention(
    api: str, staff: dict[str, str]
) -> None:
    with httpx.Client(base_url=api, headers=staff, timeout=30) as client:
        grace = client.get("/v1/learners/grace")
        assert grace.status_code == 200, grace.text
        progress = grace.json()
        assert progress["learner_id"] == "grace"
        assert datetime.fromisoformat(progress["registered_at"]) == at(1)
        assert progress["identity"]["verified"] is True
        [enrollment] = progress["enrollments"]
        assert enrollment["specialization_id"] == SPEC
        assert enrollment["title"] == "Reading the Ledger"
        assert (enrollment["intent"], enrollment["active"]) == ("certificate", True)
        assert [c["course_id"] for c in enrollment["courses"]] == [*COURSES, CAPSTONE]
        assert all(c["passed"] and c["paid"] and c["certified"] for c in enrollment["courses"])
        assert (enrollment["courses_certified"], enrollment["courses_total"]) == (4, 4)
        assert enrollment["percent_complete"] == 100.0
        code = enrollment["certificate"]["verification_code"]
        assert code and enrollment["certificate"]["revoked_at"] is None

        eligible = client.get(f"/v1/learners/grace/eligibility/{SPEC}").json()
        assert eligible["eligible"] is True and eligible["certified"] is True
        assert eligible["verification_code"] == code
        assert eligible["missing"] == []

        why = client.get(f"/v1/learners/linus/eligibility/{SPEC}")
        assert why.status_code == 200, why.text
        linus = why.json()
        assert linus["eligible"] is False and linus["verification_code"] is None
        assert linus["missing"][0] == {
            "course_id": "hra-1",
            "reason": "not_paid",
            "message": "course hra-1 passed but not paid",
        }
        assert [m["reason"] for m in linus["missing"]] == [
            "not_paid",
            "not_passed",
            "not_passed",
            "capstone_locked",
            "identity_not_verified",
        ]

        certificate = client.get(f"/v1/certificates/{code}")
        assert certificate.status_code == 200, certificate.text
        found = certificate.json()
        assert (found["status"], found["learner_id"]) == ("valid", "grace")
        assert (found["kind"], found["subject"]) == ("specialization", SPEC)
        assert found["curriculum_version"] == 1 and found["evidence"]
        assert found["revoked_at"] is None

        paid = client.get("/v1/learners/grace/payments").json()
        assert [(p["course_id"], p["state"], p["amount"]) for p in paid] == [
            (course, "captured", "49.00") for course in [*COURSES, CAPSTONE]
        ]
        refunded = client.get("/v1/learners/linus/payments")
        assert refunded.status_code == 200, refunded.text
        assert [(p["payment_id"], p["state"]) for p in refunded.json()] == [
            ("linus-1", "refunded"),
            ("linus-2", "captured"),
        ]

        funnel = client.get("/v1/stats/retention", params={"specialization": SPEC})
        assert funnel.status_code == 200, funnel.text
        assert funnel.json() == [
            {
                "specialization_id": SPEC,
                "month": at(1).date().replace(day=1).isoformat(),
                "registered": 2,
                "with_intent": 2,
                "payers": 2,
                "completed": 1,
                "completed_with_intent": 1,
                "completed_payers": 1,
                "completion_rate": 50.0,
                "intent_completion_rate": 50.0,
                "payer_completion_rate": 50.0,
            }
        ]
        everything = client.get("/v1/stats/retention").json()
        assert SPEC in {row["specialization_id"] for row in everything}
        assert client.get("/v1/stats/retention", params={"specialization": "none"}).json() == []


@pytest.mark.usefixtures("scenario")
def test_unknown_ids_are_404_with_a_message_saying_what_is_unknown(
    api: str, staff: dict[str, str]
) -> None:
    unknown_learner = f"learner {UNKNOWN!r} is not known to the ledger (or not projected yet)"
    with httpx.Client(base_url=api, headers=staff, timeout=30) as client:
        for path in (
            f"/v1/learners/{UNKNOWN}",
            f"/v1/learners/{UNKNOWN}/payments",
            f"/v1/learners/{UNKNOWN}/eligibility/{SPEC}",
        ):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert answer.json() == {"detail": unknown_learner}

        never = client.get("/v1/learners/grace/eligibility/no-such-specialization")
        assert never.status_code == 404
        assert never.json()["detail"] == (
            f"learner 'grace' never enrolled in 'no-such-specialization' (enrolled in: {SPEC})"
        )

        forged = client.get("/v1/certificates/not-a-real-code")
        assert forged.status_code == 404
        assert forged.json()["detail"].startswith(
            "no certificate has the verification code 'not-a-real-code'"
        )


def canonical(series: str) -> str:
    """A series as `name{label="value",...}` with its labels in sorted order: exposition
    writers may order them as they like."""
    if "{" not in series:
        return series
    name, labels = series[:-1].split("{", 1)
    return f"{name}{{{','.join(sorted(labels.split(',')))}}}"


def samples(exposition: str) -> dict[str, float]:
    """The sample lines of a Prometheus text exposition, by canonical series."""
    found: dict[str, float] = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            found[canonical(series)] = float(value)
    return found


@pytest.mark.usefixtures("scenario")
def test_metrics_and_docs(settings: Settings, api: str, staff: dict[str, str]) -> None:
    bootstrap = services_of(settings).kafka_bootstrap
    with httpx.Client(base_url=api, headers=staff, timeout=30) as client:
        metrics = client.get("/metrics")
        assert metrics.status_code == 200, metrics.text
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        docs = client.get("/docs")
        openapi = client.get("/openapi.json").json()
    text = metrics.text
    for name, kind in (
        ("ledger_consumer_lag", "gauge"),
        ("ledger_intake_messages_total", "counter"),
        ("ledger_events_stored_total", "counter"),
        ("ledger_projection_events_applied_total", "counter"),
        ("ledger_rejections_total", "counter"),
    ):
        assert f"# HELP {name} " in text
        assert f"# TYPE {name} {kind}\n" in text

    found = samples(text)
    partitions = range(settings.partitions)
    for p in partitions:  # the scenario has caught up everywhere
        assert found[canonical(f'ledger_consumer_lag{{stage="intake",partition="{p}"}}')] == 0
        for model in ("learner_progress", "certificates", "payments", "retention"):
            series = (
                f'ledger_consumer_lag{{stage="projections",read_model="{model}",partition="{p}"}}'
            )
            assert found[canonical(series)] == 0
    assert found[canonical('ledger_consumer_lag{stage="relay",stream="events"}')] == 0
    assert canonical('ledger_consumer_lag{stage="relay",stream="rejections"}') in found
    intake_end = sum(end_offsets(bootstrap, settings.intake_topic).values())
    assert found["ledger_intake_messages_total"] == intake_end
    events_end = sum(end_offsets(bootstrap, settings.events_topic).values())
    assert found['ledger_projection_events_applied_total{read_model="payments"}'] == events_end
    assert found["ledger_events_stored_total"] >= 16  # grace's history alone
    assert found['ledger_rejections_total{reason="not_json"}'] >= 1
    # Each worker of `ledger run` says, through its heartbeat, when it last made progress.
    for worker in ("intake", "relay", "projections"):
        name = "ledger_worker_last_progress_timestamp_seconds{"
        label = f'worker="{worker}"'
        progress = {
            series: value
            for series, value in found.items()
            if series.startswith(name) and label in series
        }
        assert progress, f"no heartbeat of the {worker} on /metrics"
        assert all(time.time() - 600 < value <= time.time() + 5 for value in progress.values())
        states = [s for s in found if s.startswith("ledger_worker_state{") and label in s]
        assert any('state="running"' in s for s in states), states
    assert "# TYPE ledger_worker_rejoins_total counter\n" in text
    assert found['ledger_projection_events_skipped_total{read_model="payments"}'] == 0
    assert "process_resident_memory_bytes" in found  # the client's own process metrics

    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert {
        "/v1/learners/{learner_id}",
        "/v1/learners/{learner_id}/eligibility/{specialization_id}",
        "/v1/learners/{learner_id}/payments",
        "/v1/certificates/{code}",
        "/v1/stats/retention",
        "/metrics",
    } <= set(openapi["paths"])
    schemas = openapi["components"]["schemas"]
    assert {"LearnerProgress", "Eligibility", "Payment", "Certificate", "NotFound"} <= set(schemas)
    assert "completion_rate" in schemas["RetentionRow"]["properties"]
    learner = openapi["paths"]["/v1/learners/{learner_id}"]["get"]["responses"]
    assert learner["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/NotFound")
    # POST /v1/events documents its body, with the very examples of schemas/inbound/.
    body = openapi["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    examples = body["application/cloudevents+json"]["examples"]
    shipped = sorted((REPO / "schemas" / "inbound").glob("*.example.json"))
    assert len(examples) == len(shipped) == 15
    for path in shipped:
        ce_type = path.name.removesuffix(".example.json")
        assert examples[ce_type]["value"] == json.loads(path.read_text()), ce_type
    envelope = body["application/cloudevents+json"]["schema"]
    assert {"id", "source", "type", "time", "subject", "data"} <= set(envelope["required"])
    security = openapi["components"]["securitySchemes"]
    assert any(scheme.get("scheme") == "bearer" for scheme in security.values())
