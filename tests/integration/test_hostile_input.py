"""Hostile input is normal input: on the real services, no value stops a partition.

Each test reproduces a way one message used to stop the pipeline for good: a NUL in an id that
crashed the intake on every restart, a learner id the intake let through and the projections
then crashed on, times PostgreSQL or Python cannot hold, and requests the API answered with 500.
Each bad message is followed by a good one on the same partition, which must come through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from commands.intake import IntakeWorker
from ledger.broker import OutRecord
from ledger.domain.timeline import LATEST
from ledger.settings import Settings
from projections import generations
from projections.read_models.learner_progress import learner_progress
from projections.skipped import listed

from .helpers import (
    Publisher,
    open_ledger,
    project_all,
    read_topic,
    relay_all,
    services_of,
    wait_for,
)
from .scenario import at

pytestmark = pytest.mark.integration


VERIFIED = "ledger.identity.verified.v1"


def structured(topic: str, body: dict[str, Any], key: str = "ada") -> OutRecord:
    return OutRecord(
        topic, key.encode(), json.dumps(body).encode(), [("content-type", b"application/json")]
    )


def cloudevent(n: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"hostile-{n}",
        "source": "urn:hostile",
        "type": VERIFIED,
        "time": at(n).isoformat(),
        "subject": "ada",
        "data": {"learner_id": "ada", "method": "government_id"},
    }
    body.update(overrides)
    return body


def hostile_records(topic: str) -> list[tuple[OutRecord, str]]:
    """(record, the reason it must be rejected with), all on the partition of key `ada`."""
    binary_nul_id = OutRecord(
        topic,
        b"ada",
        json.dumps({"learner_id": "ada", "method": "x"}).encode(),
        [
            ("ce_specversion", b"1.0"),
            ("ce_id", b"hostile-\x00-3"),
            ("ce_source", b"urn:hostile"),
            ("ce_type", VERIFIED.encode()),
            ("ce_time", at(3).isoformat().encode()),
            ("ce_subject", b"ada"),
            ("content-type", b"application/json"),
        ],
    )
    nul_learner = {"learner_id": "a\u0000da", "method": "x"}
    cases: list[tuple[dict[str, Any], str]] = [
        (cloudevent(1, id="hostile-\u0000-1"), "not_cloudevent"),
        (cloudevent(2, source="urn:\u0000"), "not_cloudevent"),
        (cloudevent(4, subject="a\u0000da", data=nul_learner), "not_cloudevent"),
        (cloudevent(5, data=nul_learner), "schema_violation"),
        (cloudevent(6, time="0001-01-01T00:00:00+05:00"), "not_cloudevent"),
        (cloudevent(7, time="9999-12-31T23:59:59-05:00"), "not_cloudevent"),
        (cloudevent(8, time=1700000000), "not_cloudevent"),
        (cloudevent(9, time="9999-12-31T23:00:00Z"), "not_cloudevent"),
    ]
    records = [(structured(topic, body), reason) for body, reason in cases]
    records.insert(2, (binary_nul_id, "not_cloudevent"))
    return records


def rejections(settings: Settings) -> list[tuple[int, str, bytes, Any]]:
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT kafka_offset, reason, value, headers FROM ledger_rejections"
            " ORDER BY kafka_offset"
        ).fetchall()
    return [(int(o), str(r), bytes(v), h) for o, r, v, h in rows]


@pytest.fixture
def intake(own_settings: Settings) -> Iterator[IntakeWorker]:
    ledger = open_ledger(own_settings)
    worker = IntakeWorker(
        ledger, own_settings, services_of(own_settings).kafka_bootstrap, max_batch=50
    )
    yield worker
    worker.close()
    ledger.close()


def test_no_value_stops_the_intake_and_every_bad_one_is_kept_with_its_reason(
    own_settings: Settings, intake: IntakeWorker
) -> None:
    settings = own_settings
    topic = settings.intake_topic
    bad = hostile_records(topic)
    end_of_span = LATEST - timedelta(days=1)
    good = [
        structured(topic, cloudevent(10, time=end_of_span.isoformat())),
        structured(topic, cloudevent(11, id="sentinel")),
    ]
    publisher = Publisher(settings)
    try:
        publisher.send(*[record for record, _ in bad], *good)
    finally:
        publisher.close()
    total = len(bad) + len(good)

    def done() -> bool:
        intake.step()
        return sum(intake.recorder.intake_positions(topic).values()) >= total

    wait_for(done, 60, "the intake past every hostile message")
    kept = rejections(settings)
    assert [reason for _, reason, _, _ in kept] == [reason for _, reason in bad]
    # Kept whole: the original bytes and headers, the NUL among them.
    assert [value for _, _, value, _ in kept] == [record.value for record, _ in bad]
    ledger = open_ledger(settings)
    try:
        from ledger.store import _headers_from_json

        binary = next(h for _, _, v, h in kept if b"hostile" not in v)
        assert ("ce_id", b"hostile-\x00-3") in _headers_from_json(binary)
        learner = ledger.get_learner("ada")
        assert learner is not None
        # Both good messages applied: the one at the end of the span and the sentinel.
        assert len(learner.verifications) == 2
    finally:
        ledger.close()
    # The rejections reach ledger.rejections too (the relay reads the same rows).
    relay_all(settings)
    on_topic = read_topic(settings, settings.rejections_topic, expect=len(bad))
    assert len(on_topic) == len(bad)


def test_an_event_a_read_model_cannot_store_is_skipped_with_its_reason_and_the_rest_applied(
    own_settings: Settings,
) -> None:
    """A record on ledger.events that the relay did not write (a NUL in its subject) makes
    the read models fail; they skip it alone, keep why, and apply the events after it."""
    settings = own_settings
    ledger = open_ledger(settings)
    try:
        ledger.publish_specialization(
            specialization_id="ds",
            title="Data Science",
            partners=("JHU",),
            language="en",
            courses=("c1", "c2", "c3"),
            capstone_course_id="cap",
            at=at(0),
        )
        from ledger.domain.learner_state import Intent

        ledger.enroll("bea", "ds", Intent.CERTIFICATE, at(1))
        relay_all(settings)
        published = read_topic(settings, settings.events_topic, expect=2)
        enrolled = next(r for r in published if (r.header("ce_type") or "").endswith("enrolled.v1"))
        forged_headers = [
            (
                k,
                b"b\x00ea"
                if k == "ce_subject"
                else (b"999999999" if k == "ledger_position" else v),
            )
            for k, v in enrolled.headers
        ]
        publisher = Publisher(settings)
        try:
            publisher.send(
                OutRecord(settings.events_topic, enrolled.key, enrolled.value, forged_headers)
            )
        finally:
            publisher.close()
        from decimal import Decimal

        ledger.record_grade("bea", "c1", Decimal("0.9"), True, at(2))
        relay_all(settings)
    finally:
        ledger.close()
    project_all(settings)
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        progress = learner_progress(conn, "bea")
        with conn.cursor() as cur:
            skipped = {
                model: listed(cur, generations.live_schema(cur, model))
                for model in ("learner_progress", "certificates", "payments", "retention")
            }
    assert progress is not None
    assert [c.passed for e in progress.enrollments for c in e.courses if c.course_id == "c1"] == [
        True
    ]
    assert len(skipped["learner_progress"]) == 1
    [entry] = skipped["learner_progress"]
    assert "NUL" in entry.error or "0x00" in entry.error or "\\x00" in entry.error
    assert entry.event_type is not None and entry.event_type.endswith("enrolled.v1")


HOSTILE_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "POST",
        "/v1/events",
        {
            "content": b"[" * 10_000 + b"]" * 10_000,
            "headers": {"content-type": "application/cloudevents-batch+json"},
        },
    ),
    (
        "POST",
        "/v1/events",
        {"content": b"1" * 5000, "headers": {"content-type": "application/cloudevents+json"}},
    ),
    (
        "POST",
        "/v1/events",
        {"content": json.dumps(cloudevent(1)), "headers": {"content-type": "text/plain"}},
    ),
    (
        "POST",
        "/v1/events",
        {
            "content": json.dumps(cloudevent(2, id="a\u0000b")),
            "headers": {"content-type": "application/cloudevents+json"},
        },
    ),
    ("POST", "/v1/events", {"content": b"\xff\xfe\x00", "headers": {}}),
    ("GET", "/v1/learners/%00", {}),
    ("GET", "/v1/learners/a%00b/payments", {}),
    ("GET", "/v1/learners/ada/eligibility/%00", {}),
    ("GET", "/v1/learners/" + "x" * 5000, {}),
    ("GET", "/v1/learners/%ff%fe", {}),
    ("GET", "/v1/stats/retention?specialization=%00", {}),
    ("GET", "/v1/certificates/%00", {}),
    ("GET", "/v1/certificates/" + "%c3%a9" * 10, {}),
]


def test_the_api_answers_hostile_requests_with_a_client_error_never_a_500(
    settings: Settings, api: str, staff: dict[str, str], tmp_path: Path
) -> None:
    statuses = []
    with httpx.Client(base_url=api, headers=staff, timeout=30) as client:
        for method, path, kwargs in HOSTILE_REQUESTS:
            response = client.request(method, path, **kwargs)
            statuses.append((method, path[:40], response.status_code))
            assert 400 <= response.status_code < 500, (path[:60], response.text[:300])
            assert response.headers["content-type"].startswith("application/json")
        big = client.post(
            "/v1/events",
            content=b" " * (17 * 1024 * 1024),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert big.status_code == 413
        text = client.post(
            "/v1/events",
            content=json.dumps(cloudevent(3)),
            headers={"content-type": "text/plain"},
        )
        assert text.status_code == 415
        assert "application/cloudevents+json" in text.json()["errors"][0]["message"]
        nul = client.get("/v1/learners/a%00b")
        assert nul.status_code == 422
        assert "NUL" in nul.text
