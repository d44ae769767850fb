"""The Open edX bridge without services: the mapping checked whole, every translated event type
from messages made by `openedx-events`' own Avro serialization, ids derived from the Open edX
event's, no personal data carried over, and every untranslatable message named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridges.openedx.avro import Schemas, Untranslatable, decode
from bridges.openedx.mapping import MappingError, load_mapping, parse_mapping
from bridges.openedx.translate import CertificateLookup, Translated, Translator, envelope
from commands.cloudevents import parse
from tests import openedx_events as oe

RUN_1 = "course-v1:JHUx+DS.1+2026"
RUN_2 = "course-v1:JHUx+DS.2+2026"
T = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
MAPPING = parse_mapping(
    {
        "courses": {
            RUN_1: {"course": "ds-1", "specialization": "jhu-data-science"},
            RUN_2: {"course": "ds-2"},
        },
        "learners": {"prefix": "edx-", "users": {"7": "learner-0007"}},
    }
)


Message = tuple[bytes, list[tuple[str, bytes]], bytes]


def translated(message: Message, lookup: CertificateLookup | None = None) -> list[Translated]:
    value, headers, _ = message
    event = envelope({k: v.decode() for k, v in headers})
    data = decode(value, event.event_type, Schemas())
    return Translator(MAPPING, lookup or (lambda _l, _c: None)).translate(event, data)


def as_json(messages: list[Translated]) -> list[dict[str, Any]]:
    return [json.loads(m.value) for m in messages]


def test_an_enrollment_becomes_the_ledgers_enrollment_with_ids_from_the_open_edx_event() -> None:
    message = oe.enrolled(42, RUN_1, "verified", T, "enroll-42")
    [event] = as_json(translated(message))
    assert event["type"] == "ledger.learner.enrolled.v1"
    assert (event["source"], event["id"]) == (
        "urn:openedx:openedx/lms/web",
        oe.event_id("enroll-42"),
    )
    assert event["subject"] == "edx-42" and event["time"] == T.isoformat()
    assert event["data"] == {
        "learner_id": "edx-42",
        "specialization_id": "jhu-data-science",
        "intent": "certificate",
    }
    parse(translated(message)[0].value, [])  # what the intake accepts, exactly
    assert translated(message)[0].value == translated(message)[0].value  # byte for byte
    [audit] = as_json(translated(oe.enrolled(7, RUN_1, "audit", T, "enroll-7")))
    assert audit["data"]["intent"] == "audit" and audit["subject"] == "learner-0007"


def test_grades_and_verifications_are_translated_and_no_personal_data_crosses() -> None:
    [passing] = as_json(translated(oe.passing(42, RUN_2, T, "pass-42")))
    assert (passing["type"], passing["data"]) == (
        "ledger.course.graded.v1",
        {"learner_id": "edx-42", "course_id": "ds-2", "grade": "1.0000", "passed": True},
    )
    [graded] = as_json(translated(oe.grade(42, RUN_1, 0.8531, T, "grade-42")))
    assert graded["data"]["grade"] == "0.8531" and graded["data"]["passed"] is True
    [failing] = as_json(translated(oe.passing(42, RUN_1, T, "fail-42", is_passing=False)))
    assert failing["data"]["passed"] is False and failing["data"]["grade"] == "0.0000"
    [verified] = as_json(translated(oe.verified(42, T, "idv-42")))
    assert verified["type"] == "ledger.identity.verified.v1"
    assert verified["data"] == {
        "learner_id": "edx-42",
        "method": "openedx_idv",
        "expires_at": "2027-06-01T00:00:00+00:00",
    }
    everything = json.dumps([passing, graded, verified])
    assert not any(pii in everything for pii in ("ada.l", "ada@example.org", "Ada Lovelace"))


def test_what_cannot_be_translated_is_named() -> None:
    with pytest.raises(Untranslatable) as unmapped:
        translated(oe.enrolled(42, "course-v1:Other+X+2026", "verified", T, "e-x"))
    assert unmapped.value.reason == "unmapped_course"
    with pytest.raises(Untranslatable) as no_specialization:
        translated(oe.enrolled(42, RUN_2, "verified", T, "e-2"))
    assert no_specialization.value.reason == "no_specialization"
    value, headers, key = oe.enrolled(42, RUN_1, "verified", T, "e-1")
    with pytest.raises(Untranslatable) as garbage:
        translated((b"\x00\x00\x00\x00\x07" + b"\xff" * 9, headers, key))
    assert garbage.value.reason == "not_avro"
    with pytest.raises(Untranslatable) as headless:
        translated((value, [h for h in headers if h[0] != "ce_id"], key))
    assert headless.value.reason == "not_cloudevent" and "ce_id" in headless.value.message
    renamed = [(k, b"org.openedx.nothing.v1" if k == "ce_type" else v) for k, v in headers]
    with pytest.raises(Untranslatable) as unknown:
        translated((value, renamed, key))
    assert unknown.value.reason == "unknown_openedx_type"
    login = oe.signals.SESSION_LOGIN_COMPLETED
    logged_in = (
        oe.framed(login, {"user": oe.user(42)}),
        oe.headers(login, oe.event_id("login"), T),
        b"42",
    )
    with pytest.raises(Untranslatable) as untranslated:
        translated(logged_in)
    assert untranslated.value.reason == "unknown_openedx_type"
    assert "does not translate" in untranslated.value.message
    skipping = parse_mapping(
        {"courses": {RUN_1: {"course": "ds-1"}}, "unmapped": {"courses": "skip"}}
    )
    event = envelope({k: v.decode() for k, v in headers})
    data = decode(value, event.event_type, Schemas())
    assert Translator(skipping, lambda _l, _c: None).translate(event, data) == []


def test_a_revocation_names_the_ledgers_own_certificate() -> None:
    signal = oe.signals.CERTIFICATE_REVOKED
    certificate = oe.oe.CertificateData(
        user=oe.user(42),
        course=oe.course(RUN_1),
        mode="verified",
        grade="0.9",
        download_url="",
        name="Ada Lovelace",
        current_status="revoked",
        previous_status="downloadable",
    )
    message = (
        oe.framed(signal, {"certificate": certificate}),
        oe.headers(signal, oe.event_id("revoke"), T),
        b"42",
    )
    [revoked] = as_json(translated(message, lambda learner, course: f"cert-{learner}-{course}"))
    assert revoked["data"] == {
        "learner_id": "edx-42",
        "certificate_id": "cert-edx-42-ds-1",
        "reason": "openedx_certificate_revoked",
    }
    with pytest.raises(Untranslatable) as none:
        translated(message)
    assert none.value.reason == "no_live_certificate"


def test_a_bad_mapping_is_refused_with_every_problem_named(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text(
        '[courses."course-v1:A+B+C"]\ncourse = ""\nflavour = "x"\n'
        '[courses."course-v1:D+E+F"]\nspecialization = 3\n'
        '[learners.users]\nbob = "b"\n[unmapped]\ncourses = "maybe"\n[extras]\n'
    )
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    said = str(caught.value)
    for problem in (
        "courses.'course-v1:A+B+C'.course: must be a non-empty string",
        "courses.'course-v1:A+B+C': unknown key(s) flavour",
        "courses.'course-v1:D+E+F'.course",
        "learners.users.'bob': an Open edX user id is a number",
        'unmapped.courses: must be "reject" or "skip"',
        "unknown table(s): extras",
    ):
        assert problem in said, said
    path.write_text("not = [toml")
    with pytest.raises(MappingError, match="is not TOML"):
        load_mapping(path)


def test_with_a_schema_registry_the_writers_schema_comes_from_it() -> None:
    """A registry answering `GET /schemas/ids/{id}` as Confluent's does: the value is read with
    the writer's schema it returns, resolved against the installed one; an id it does not know
    is a rejection saying so."""
    import http.server
    import threading

    from openedx_events.event_bus.avro.serializer import AvroSignalSerializer

    schema = AvroSignalSerializer(oe.signals.COURSE_ENROLLMENT_CREATED).schema
    asked: list[str] = []

    class Registry(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            found = self.path == f"/schemas/ids/{oe.SCHEMA_ID}"
            body = json.dumps({"schema": json.dumps(schema)} if found else {"error_code": 40403})
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        schemas = Schemas(f"http://127.0.0.1:{server.server_port}")
        value, headers, _ = oe.enrolled(42, RUN_1, "verified", T, "registry")
        event_type = dict(headers)["ce_type"].decode()
        data = decode(value, event_type, schemas)
        assert data["enrollment"]["user"]["id"] == 42
        decode(value, event_type, schemas)  # the schema is asked for once
        assert asked == [f"/schemas/ids/{oe.SCHEMA_ID}"]
        unknown = b"\x00" + (99).to_bytes(4, "big") + value[5:]
        with pytest.raises(Untranslatable) as caught:
            decode(unknown, event_type, schemas)
        assert caught.value.reason == "unknown_schema"
    finally:
        server.shutdown()
