"""Parsing inbound CloudEvents: both modes agree, and every bad message says what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from commands.cloudevents import RejectionError, parse, structured
from commands.messages import CourseGraded, LearnerEnrolled

from .helpers import T0

ENROLLED = {"learner_id": "ada", "specialization_id": "ds", "intent": "certificate"}


def binary(event_type: str, data: Any, subject: str = "ada", **extra: str) -> tuple[bytes, list]:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"m-1"),
        ("ce_source", b"urn:test"),
        ("ce_type", event_type.encode()),
        ("ce_time", T0.isoformat().encode()),
        ("ce_subject", subject.encode()),
        ("content-type", b"application/json"),
    ]
    headers += [(f"ce_{k}", v.encode()) for k, v in extra.items()]
    return json.dumps(data).encode(), headers


def reject_reason(value: bytes | None, headers: list | None = None) -> RejectionError:
    with pytest.raises(RejectionError) as caught:
        parse(value, headers or [])
    return caught.value


def test_structured_and_binary_mode_give_the_same_message_and_digest() -> None:
    value = structured("ledger.learner.enrolled.v1", "urn:test", "m-1", T0, "ada", ENROLLED)
    from_structured = parse(value, [])
    from_binary = parse(*binary("ledger.learner.enrolled.v1", ENROLLED))
    assert from_structured == from_binary
    assert isinstance(from_structured.data, LearnerEnrolled)
    assert from_structured.time == T0


def test_a_different_content_gives_a_different_digest() -> None:
    a = parse(structured("ledger.learner.enrolled.v1", "urn:test", "m-1", T0, "ada", ENROLLED), [])
    b = parse(
        structured(
            "ledger.learner.enrolled.v1",
            "urn:test",
            "m-1",
            T0,
            "ada",
            {**ENROLLED, "intent": "audit"},
        ),
        [],
    )
    assert a.digest != b.digest


def test_not_json() -> None:
    assert reject_reason(b"{nope").reason == "not_json"
    assert reject_reason(None).reason == "not_json"


def test_json_that_is_not_a_cloudevent() -> None:
    assert reject_reason(b'{"hello": 1}').reason == "not_cloudevent"
    assert reject_reason(b"[1, 2]").reason == "not_cloudevent"


def test_missing_time_is_named() -> None:
    body = json.loads(
        structured("ledger.learner.enrolled.v1", "urn:test", "m", T0, "ada", ENROLLED)
    )
    del body["time"]
    error = reject_reason(json.dumps(body).encode())
    assert error.reason == "not_cloudevent"
    assert "time" in error.message
    assert error.message_id == "m"


def test_unknown_type_lists_the_known_ones() -> None:
    error = reject_reason(structured("ledger.nope.v1", "urn:test", "m", T0, "ada", {}))
    assert error.reason == "unknown_type"
    assert "ledger.course.graded.v1" in error.message


def test_schema_violation_names_the_field_path() -> None:
    data = {"learner_id": "ada", "course_id": "c", "grade": "1.5", "passed": True}
    error = reject_reason(structured(CourseGraded.TYPE, "urn:test", "m", T0, "ada", data))
    assert error.reason == "schema_violation"
    assert "data.grade" in error.message


def test_unknown_data_fields_are_a_schema_violation() -> None:
    error = reject_reason(
        structured(
            "ledger.learner.enrolled.v1", "urn:test", "m", T0, "ada", {**ENROLLED, "color": "red"}
        )
    )
    assert error.reason == "schema_violation"
    assert "data.color" in error.message


def test_subject_must_name_the_learner() -> None:
    error = reject_reason(*binary("ledger.learner.enrolled.v1", ENROLLED, subject="bob"))
    assert error.reason == "subject_mismatch"


def test_a_naive_time_is_refused() -> None:
    value, headers = binary("ledger.learner.enrolled.v1", ENROLLED)
    headers = [(k, b"2026-03-01T12:00:00" if k == "ce_time" else v) for k, v in headers]
    assert reject_reason(value, headers).reason == "not_cloudevent"


def test_binary_data_that_is_not_json_says_so_and_keeps_who_sent_it() -> None:
    _, headers = binary("ledger.learner.enrolled.v1", ENROLLED)
    avro = [(k, b"application/avro" if k == "content-type" else v) for k, v in headers]
    error = reject_reason(b"\x00\x00\x00\x00\x01\x02", avro)
    assert error.reason == "unsupported_content_type"
    assert "application/avro" in error.message and "bridge openedx" in error.message
    assert (error.source, error.message_id) == ("urn:test", "m-1")
    broken = reject_reason(b"{nope", headers)
    assert broken.reason == "not_json"
    assert (broken.source, broken.message_id) == ("urn:test", "m-1")
