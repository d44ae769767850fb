"""`POST /v1/events` through a real HTTP client against a running `ledger run api`."""

from __future__ import annotations

import json

import httpx
import pytest

from ledger.broker import end_offsets
from ledger.settings import Settings

from .helpers import read_topic, services_of
from .scenario import at

pytestmark = pytest.mark.integration


def event(n: int, learner: str = "hal") -> dict:
    return {
        "specversion": "1.0",
        "id": f"http-{n}",
        "source": "urn:http-test",
        "type": "ledger.aid.granted.v1",
        "time": at(n).isoformat(),
        "subject": learner,
        "data": {"learner_id": learner, "course_id": f"ds-{n}"},
    }


def test_http_intake_accepts_every_mode_and_refuses_bad_batches_whole(
    settings: Settings,
    api: str,
    staff: dict[str, str],
) -> None:
    with httpx.Client(base_url=api, headers=staff, timeout=30) as client:
        one = client.post(
            "/v1/events",
            content=json.dumps(event(1)),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert one.status_code == 202, one.text
        assert one.json()["accepted"][0]["id"] == "http-1"

        batch = client.post(
            "/v1/events",
            json=[event(2), event(3)],
            headers={"content-type": "application/cloudevents-batch+json"},
        )
        assert batch.status_code == 202, batch.text
        assert [a["id"] for a in batch.json()["accepted"]] == ["http-2", "http-3"]

        binary = client.post(
            "/v1/events",
            json={"learner_id": "hal", "course_id": "ds-4"},
            headers={
                "ce-specversion": "1.0",
                "ce-id": "http-4",
                "ce-source": "urn:http-test",
                "ce-type": "ledger.aid.granted.v1",
                "ce-time": at(4).isoformat(),
                "ce-subject": "hal",
            },
        )
        assert binary.status_code == 202, binary.text

        bad = client.post(
            "/v1/events",
            json=[event(5), {"specversion": "1.0"}, {**event(6), "type": "ledger.nope.v1"}],
        )
        assert bad.status_code == 400
        errors = bad.json()["errors"]
        assert [(e["index"], e["reason"]) for e in errors] == [
            (1, "not_cloudevent"),
            (2, "unknown_type"),
        ]
        assert client.post("/v1/events", content=b"{oops").json()["errors"][0]["reason"] == (
            "not_json"
        )
        assert client.get("/docs").status_code == 200

    everything = sum(
        end_offsets(services_of(settings).kafka_bootstrap, settings.intake_topic).values()
    )
    records = read_topic(settings, settings.intake_topic, expect=everything, timeout_s=60)
    ids = sorted(
        json.loads(r.value or b"{}").get("id") or (r.header("ce_id") or "")
        for r in records
        if (r.key or b"") == b"hal"
    )
    assert ids == ["http-1", "http-2", "http-3", "http-4"]  # nothing of the refused batch
