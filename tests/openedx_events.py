"""Open edX events as the Open edX event bus carries them, made with the `openedx-events`
package's own data classes and its own Avro serialization, framed as Confluent's schema registry
frames values, with the headers `edx-event-bus-kafka` sets. Shared by the bridge's unit and
integration tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from opaque_keys.edx.keys import CourseKey
from openedx_events.event_bus.avro.serializer import serialize_event_data_to_bytes
from openedx_events.learning import data as oe
from openedx_events.learning import signals

#: The schema id a schema registry gave (the bridge without a registry does not ask).
SCHEMA_ID = 7
SOURCE = "openedx/lms/web"
PII = oe.UserPersonalData(username="ada.l", email="ada@example.org", name="Ada Lovelace")


def user(user_id: int) -> oe.UserData:
    return oe.UserData(id=user_id, is_active=True, pii=PII)


def course(key: str) -> oe.CourseData:
    return oe.CourseData(
        course_key=CourseKey.from_string(key),
        display_name="Data Science 1",
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 12, 31, tzinfo=UTC),
    )


def enrollment(user_id: int, key: str, mode: str = "verified", active: bool = True) -> Any:
    return oe.CourseEnrollmentData(
        user=user(user_id),
        course=course(key),
        mode=mode,
        is_active=active,
        creation_date=datetime(2026, 1, 5, tzinfo=UTC),
        created_by=user(user_id),
    )


def framed(signal: Any, event_data: dict[str, Any]) -> bytes:
    """Confluent's framing: a zero byte, the schema id, then the Avro body."""
    body = serialize_event_data_to_bytes(event_data, signal)
    return b"\x00" + SCHEMA_ID.to_bytes(4, "big") + body


def headers(signal: Any, event_id: str, time: datetime) -> list[tuple[str, bytes]]:
    """The headers edx-event-bus-kafka writes beside the value."""
    return [
        ("ce_type", signal.event_type.encode()),
        ("ce_id", event_id.encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_specversion", b"1.0"),
        ("ce_time", time.isoformat().encode()),
        ("ce_minorversion", b"0"),
        ("content-type", b"application/avro"),
        ("ce_datacontenttype", b"application/avro"),
        ("sourcehost", b"lms-1"),
        ("sourcelib", b"10.5.0"),
    ]


def event_id(name: str) -> str:
    """A stable event id per name, as Open edX makes uuid1s."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"openedx-test:{name}"))


def enrolled(user_id: int, key: str, mode: str, time: datetime, name: str) -> tuple[Any, ...]:
    signal = signals.COURSE_ENROLLMENT_CREATED
    data = {"enrollment": enrollment(user_id, key, mode)}
    return framed(signal, data), headers(signal, event_id(name), time), str(user_id).encode()


def passing(user_id: int, key: str, time: datetime, name: str, is_passing: bool = True) -> Any:
    signal = signals.COURSE_PASSING_STATUS_UPDATED
    status = oe.CoursePassingStatusData(
        is_passing=is_passing, course=course(key), user=user(user_id)
    )
    return (
        framed(signal, {"course_passing_status": status}),
        headers(signal, event_id(name), time),
        str(user_id).encode(),
    )


def grade(user_id: int, key: str, percent: float, time: datetime, name: str) -> Any:
    signal = signals.PERSISTENT_GRADE_SUMMARY_CHANGED
    summary = oe.PersistentCourseGradeData(
        user_id=user_id,
        course=course(key),
        course_edited_timestamp=time,
        course_version="v1",
        grading_policy_hash="h",
        percent_grade=percent,
        letter_grade="Pass",
        # openedx-events cannot serialize a summary without it (None has no Avro form here):
        # on the event bus, a grade summary is one of a learner who passed.
        passed_timestamp=time,
    )
    return (
        framed(signal, {"grade": summary}),
        headers(signal, event_id(name), time),
        str(user_id).encode(),
    )


def verified(user_id: int, time: datetime, name: str) -> Any:
    signal = signals.IDV_ATTEMPT_APPROVED
    attempt = oe.VerificationAttemptData(
        attempt_id=1,
        user=user(user_id),
        status="approved",
        name="Ada Lovelace",
        expiration_date=datetime(2027, 6, 1, tzinfo=UTC),
    )
    return (
        framed(signal, {"idv_attempt": attempt}),
        headers(signal, event_id(name), time),
        str(user_id).encode(),
    )
