"""Values no worker can store or judge are refused at the edge, naming the field; the rules'
date arithmetic never overflows; rejections store whatever bytes a message carried.

Each of these once stopped a partition for good (a NUL in an id crashed the intake on every
restart; a time of 0001-01-01T00:00:00+05:00 broke `learner show`; an identity verified at the
end of year 9999 overflowed in I1's year of validity).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from commands.cloudevents import RejectionError, parse
from commands.messages import MESSAGE_TYPES
from ledger.application import Ledger
from ledger.domain.learner_state import Intent
from ledger.domain.timeline import EARLIEST, LATEST, days_after
from ledger.kafka_records import build_batch, install, read_all
from ledger.store import _headers_from_json, _headers_to_json, printable

from ..scenarios import T0

VERIFIED = {"learner_id": "ada", "method": "government_id"}


def event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": "m-1",
        "source": "urn:test",
        "type": "ledger.identity.verified.v1",
        "time": "2026-01-05T09:00:00Z",
        "subject": "ada",
        "data": dict(VERIFIED),
    }
    body.update(overrides)
    return body


def rejected(body: dict[str, Any] | bytes, headers: list[Any] | None = None) -> RejectionError:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(RejectionError) as caught:
        parse(value, headers or [])
    return caught.value


@pytest.mark.parametrize("attribute", ["id", "source", "type", "subject"])
def test_a_nul_in_any_attribute_is_refused_naming_it(attribute: str) -> None:
    error = rejected(event(**{attribute: "a\u0000b"}))
    assert error.reason == "not_cloudevent"
    assert f"{attribute}: " in error.message
    assert "NUL" in error.message


def test_a_nul_in_a_binary_mode_header_is_refused() -> None:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"m\x00-1"),
        ("ce_source", b"urn:test"),
        ("ce_type", b"ledger.identity.verified.v1"),
        ("ce_time", b"2026-01-05T09:00:00Z"),
        ("ce_subject", b"ada"),
    ]
    error = rejected(json.dumps(VERIFIED).encode(), headers)
    assert error.reason == "not_cloudevent"
    assert "id: " in error.message


def _text_fields(data: dict[str, Any]) -> list[str]:
    return [k for k, v in data.items() if isinstance(v, str)]


def _examples() -> list[tuple[str, dict[str, Any]]]:
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "schemas" / "inbound"
    found = []
    for message_type in MESSAGE_TYPES:
        example = json.loads((folder / f"{message_type}.example.json").read_text())
        found.append((message_type, example))
    return found


@pytest.mark.parametrize(("message_type", "example"), _examples())
def test_a_nul_in_any_text_field_of_any_type_is_a_schema_violation_naming_the_path(
    message_type: str, example: dict[str, Any]
) -> None:
    data = example["data"]
    for field in _text_fields(data):
        if field in ("amount", "currency", "grade", "intent", "expires_at"):
            continue  # not free text: numbers, codes, enums, times have their own checks
        bad = {**data, field: data[field] + "\u0000"}
        subject = bad.get("learner_id") or bad.get("specialization_id")
        error = rejected({**example, "data": bad, "subject": subject})
        assert error.reason in ("schema_violation", "not_cloudevent"), (field, error.message)
        assert "NUL" in error.message, (field, error.message)


@pytest.mark.parametrize(
    "time",
    [
        "0001-01-01T00:00:00+05:00",  # year 0 in UTC
        "9999-12-31T23:59:59-05:00",  # year 10000 in UTC
        "9999-12-31T23:00:00Z",  # I1 would add a year to it
        "0001-01-01T00:00:00Z",  # no time zone could show it
    ],
)
def test_a_time_outside_the_span_is_refused(time: str) -> None:
    error = rejected(event(time=time))
    assert error.reason == "not_cloudevent"
    assert "time: " in error.message
    assert "outside the times the ledger can record" in error.message


@pytest.mark.parametrize("time", [1700000000, "1700000000", 1.7e9, True, "2026-01-05", None])
def test_a_time_must_be_rfc3339_text_not_a_number(time: Any) -> None:
    error = rejected(event(time=time))
    assert error.reason == "not_cloudevent"
    assert "time" in error.message


def test_times_just_inside_the_span_are_accepted() -> None:
    for moment in (EARLIEST, LATEST):
        message = parse(json.dumps(event(time=moment.isoformat())).encode(), [])
        assert message.time == moment


def test_expires_at_is_held_to_the_same_span_and_form() -> None:
    for expires in ("9999-12-31T23:00:00Z", 1700000000):
        error = rejected(event(data={**VERIFIED, "expires_at": expires}))
        assert error.reason == "schema_violation"
        assert "data.expires_at" in error.message


def test_a_grade_with_absurd_precision_is_refused() -> None:
    data = {"learner_id": "ada", "course_id": "c", "grade": "0." + "1" * 5000, "passed": True}
    error = rejected(event(type="ledger.course.graded.v1", data=data))
    assert error.reason == "schema_violation"
    assert "data.grade" in error.message


def test_json_nested_deeper_than_1024_or_a_5000_digit_number_is_not_json() -> None:
    assert rejected(b"[" * 10_000 + b"]" * 10_000).reason == "not_json"
    assert rejected(b"1" * 5000).reason == "not_json"


def test_days_after_saturates_at_the_end_of_the_span() -> None:
    assert days_after(T0, 14) == T0 + timedelta(days=14)
    assert days_after(LATEST - timedelta(days=3), 365) == LATEST
    assert days_after(LATEST, 3650) == LATEST


def test_I1_a_verification_at_the_end_of_time_is_valid_until_then(ledger: Ledger) -> None:
    at = LATEST - timedelta(days=1)
    with ledger.session() as session:
        session.verify_identity("ada", "government_id", None, at)
    learner = ledger.get_learner("ada")
    assert learner is not None
    assert learner.verifications[-1].expires_at == LATEST


def test_P4_a_refund_window_reaching_past_the_span_does_not_overflow(ledger: Ledger) -> None:
    from ledger.domain import Policy, Price

    at = LATEST - timedelta(days=2)
    with ledger.session() as session:
        session.publish_specialization(
            specialization_id="ds",
            title="Data Science",
            partners=("JHU",),
            language="en",
            courses=("c1", "c2", "c3"),
            capstone_course_id="cap",
            price=Price(),
            policy=Policy(refund_window_days=3650),
            at=at,
        )
    with ledger.session() as session:
        session.enroll("ada", "ds", Intent.CERTIFICATE, at)
        session.capture_payment("ada", "p1", "c1", Decimal("49.00"), "USD", at)
        session.request_refund("ada", "p1", LATEST)
    learner = ledger.get_learner("ada")
    assert learner is not None
    assert learner.payments["p1"].state.value == "refunded"


def test_rejection_text_is_stored_with_nul_and_surrogates_escaped() -> None:
    assert printable("a\x00b") == "a\\x00b"
    assert printable("x\udcffy") == "x\\udcffy"
    assert printable("plain") == "plain"
    assert printable(None) is None


def test_headers_of_any_bytes_round_trip_through_json_without_nul() -> None:
    headers: list[tuple[str, bytes | None]] = [
        ("ce_id", b"m\x00-1"),
        ("raw", bytes(range(256))),
        ("none", None),
        ("n\udcffame", b"v"),  # a name kafka-python could not decode (surrogateescape)
    ]
    encoded = _headers_to_json(headers)
    assert "\\u0000" not in encoded
    assert _headers_from_json(json.loads(encoded)) == headers


def test_headers_stored_before_are_still_read() -> None:
    old = json.dumps([["ce_id", "m-1"], ["bin", "\u00ff"], ["none", None]])
    assert _headers_from_json(json.loads(old)) == [
        ("ce_id", b"m-1"),
        ("bin", b"\xff"),
        ("none", None),
    ]


def test_a_header_name_that_is_not_utf8_is_read_not_raised() -> None:
    assert install()
    batch = bytearray(build_batch([(b"k", b"{}", [("h\u00e9", b"v")])], 1_700_000_000_000))
    at = batch.index("h\u00e9".encode())
    batch[at + 1 : at + 3] = b"\xff\xfe"  # same length, not UTF-8 (the CRC is not checked here)
    [record] = read_all(bytes(batch))
    name = record[-1][0][0]
    assert name.encode("utf-8", "surrogateescape") == b"h\xff\xfe"


def test_business_time_keeps_its_zone_but_is_judged_in_utc() -> None:
    message = parse(json.dumps(event(time="2026-01-05T09:00:00+05:00")).encode(), [])
    assert message.time == datetime(2026, 1, 5, 4, 0, tzinfo=UTC)
