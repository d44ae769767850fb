"""`ledger chaos fuzz`: hostile messages of every kind among valid ones, each accounted for.

The messages, from a seed: valid CloudEvents of every learner type (with edge values that are
valid: text of every script and of the longest length allowed, times at the ends of the span,
grades of 0 and 1), and, as many again, hostile ones, each made from a valid one: a NUL in an
attribute, a data field or a binary-mode header; a time outside the span, a number for a time;
bits flipped, the value truncated, a field of the wrong type, a huge field, bytes that are not
UTF-8, an empty value, a tombstone (no value at all), JSON nested thousands deep, numbers of
thousands of digits, `data_base64`, an unknown type, a subject that names someone else, an id
reused for other content, an exact resend, garbage headers. Most go onto `ledger.intake`
directly (each carrying a `fuzz_kind` header, which the intake ignores), some through
`POST /v1/events` (which must answer every one with 202 or a 4xx, never a 5xx). Sentinels come
last: one learner per partition, enrolled and graded.

Then, once the pipeline has caught up: every record on `ledger.intake` must be accepted (its
(source, id) stored with that offset), rejected (kept with a reason at that offset), or an exact
duplicate of an accepted message; no worker may have failed, crashed or needed restarting; every
sentinel must be in the read models; the API must answer for the accepted learners without a
5xx; and `ledger audit verify` must pass.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console

from commands.cloudevents import RejectionError, parse
from ledger.audit.verify import verify
from ledger.broker import Consumer, OutRecord, Producer, Record
from ledger.domain.timeline import EARLIEST, LATEST
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import Scratch, scratch, staff_headers, worker_env
from ledger.entrypoints.chaos.faults import STANDARD_ROLES
from ledger.entrypoints.chaos.load import wait_for_catalog
from ledger.entrypoints.chaos.matrix import API_PORT, API_URL, SETTLE_TIMEOUT_S, api_up
from ledger.entrypoints.chaos.processes import Workers
from ledger.entrypoints.pipeline_stages import Stages, wait_settled
from ledger.settings import Services, Settings
from projections.read_models.learner_progress import learner_progress

SOURCE = "urn:fuzz"
SPEC = "fuzz-spec"
COURSES = ["fz-1", "fz-2", "fz-3"]
CAPSTONE = "fz-capstone"
T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
#: Text that is valid but unusual: scripts, emoji, combining marks, right-to-left, controls.
ODD_TEXT = ["Zoë", "学习者", "🎓🧪", "e\u0301", "עברית", "tab\there", "\u200bzero-width", "x" * 200]

CATALOG_DATA = {
    "specialization_id": SPEC,
    "title": "Fuzzing",
    "partners": ["Chaos University"],
    "language": "en",
    "courses": COURSES,
    "capstone_course_id": CAPSTONE,
}


@dataclass
class Message:
    """One message to send: where to, its bytes, and what kind of message it is."""

    kind: str
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    key: bytes
    via_api: bool = False
    content_type: str = "application/cloudevents+json"


class Generator:
    """Valid and hostile messages, deterministically from a seed."""

    def __init__(self, seed: int, learners: int = 2000) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
        self.learners = learners
        self.count = 0
        self.valid: list[dict[str, Any]] = []

    def _id(self) -> str:
        self.count += 1
        return f"fz-{self.count}"

    def _learner(self) -> str:
        n = self.rng.randrange(self.learners)
        if n % 97 == 0:
            return f"fz-{self.rng.choice(ODD_TEXT)}-{n}"[:200]
        return f"fz-learner-{n}"

    def _time(self) -> str:
        roll = self.rng.random()
        if roll < 0.01:
            return (EARLIEST if self.rng.random() < 0.5 else LATEST).isoformat()
        offset = self.rng.choice(["+00:00", "Z", "+05:30", "-08:00"])
        moment = T0 + timedelta(minutes=self.rng.randrange(0, 500_000))
        text = moment.replace(tzinfo=None).isoformat()
        if offset == "Z":
            return text + "Z"
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        local = moment + sign * timedelta(hours=hours, minutes=minutes)
        return local.replace(tzinfo=None).isoformat() + offset

    def valid_event(self) -> dict[str, Any]:
        learner = self._learner()
        kind = self.rng.randrange(8)
        course = self.rng.choice([*COURSES, CAPSTONE, "fz-other"])
        data: dict[str, Any]
        if kind == 0:
            event_type = "ledger.learner.enrolled.v1"
            data = {
                "specialization_id": SPEC,
                "intent": self.rng.choice(["certificate", "audit"]),
            }
        elif kind == 1:
            event_type = "ledger.identity.verified.v1"
            data = {"method": self.rng.choice(["government_id", *ODD_TEXT])}
        elif kind == 2:
            event_type = "ledger.course.graded.v1"
            grade = self.rng.choice(["0", "1", "0.5", 0.8333333333333334, 1, 0])
            data = {"course_id": course, "grade": grade, "passed": self.rng.random() < 0.7}
        elif kind == 3:
            event_type = "ledger.payment.captured.v1"
            data = {
                "payment_id": f"pay-{self.count}",
                "course_id": course,
                "amount": self.rng.choice(["49.00", "49", "0.01", "9999999999.99"]),
                "currency": self.rng.choice(["USD", "EUR"]),
            }
        elif kind == 4:
            event_type = "ledger.aid.granted.v1"
            data = {"course_id": course}
        elif kind == 5:
            event_type = "ledger.identity.rejected.v1"
            data = {"reason": self.rng.choice(ODD_TEXT)}
        elif kind == 6:
            event_type = "ledger.payment.refund_requested.v1"
            data = {"payment_id": f"pay-{self.rng.randrange(max(1, self.count))}"}
        else:
            event_type = "ledger.learner.unenrolled.v1"
            data = {"specialization_id": SPEC}
        event = {
            "specversion": "1.0",
            "id": self._id(),
            "source": SOURCE,
            "type": event_type,
            "time": self._time(),
            "subject": learner,
            "data": {"learner_id": learner, **data},
        }
        self.valid.append(event)
        return event

    def messages(self, total: int, api_share: float = 0.03) -> list[Message]:
        """`total` messages: about half valid, half hostile of every kind."""
        found: list[Message] = []
        kinds = list(HOSTILE)
        while len(found) < total:
            event = self.valid_event()
            via_api = self.rng.random() < api_share
            if self.rng.random() < 0.5:
                found.append(_structured("valid", event, via_api))
                continue
            kind = self.rng.choice(kinds)
            if kind in RARE and self.rng.random() > 0.05:
                kind = "wrong-type"
            found.append(HOSTILE[kind](self, event, via_api))
        return found

    def sentinels(self, partitions: int) -> list[Message]:
        """Enrolled and graded learners, enough to land on every partition."""
        found = []
        for n in range(partitions * 4):
            learner = f"fz-sentinel-{n}"
            for event_type, data in (
                ("ledger.learner.enrolled.v1", {"specialization_id": SPEC, "intent": "audit"}),
                (
                    "ledger.course.graded.v1",
                    {"course_id": COURSES[0], "grade": "0.9", "passed": True},
                ),
            ):
                found.append(
                    _structured(
                        "sentinel",
                        {
                            "specversion": "1.0",
                            "id": self._id(),
                            "source": SOURCE,
                            "type": event_type,
                            "time": (T0 + timedelta(days=n)).isoformat(),
                            "subject": learner,
                            "data": {"learner_id": learner, **data},
                        },
                        False,
                    )
                )
        return found


def _structured(kind: str, event: dict[str, Any], via_api: bool) -> Message:
    return Message(
        kind,
        json.dumps(event).encode(),
        [("content-type", b"application/cloudevents+json")],
        str(event.get("subject", "")).encode("utf-8", "replace"),
        via_api,
    )


def _binary(kind: str, event: dict[str, Any], overrides: dict[str, bytes | None]) -> Message:
    headers: list[tuple[str, bytes | None]] = [
        (f"ce_{k}", str(event[k]).encode())
        for k in ("specversion", "id", "source", "type", "time", "subject")
    ]
    headers = [(k, overrides.get(k, v)) for k, v in headers]
    headers += [(k, v) for k, v in overrides.items() if k not in dict(headers)]
    headers.append(("content-type", b"application/json"))
    return Message(
        kind, json.dumps(event["data"]).encode(), headers, str(event["subject"]).encode()
    )


def _with(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**event, **changes}


def _data_with(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**event, "data": {**event["data"], **changes}}


def _text_field(g: Generator, event: dict[str, Any]) -> str:
    fields: list[str] = [k for k, v in event["data"].items() if isinstance(v, str)]
    return g.rng.choice(fields)


def _nul_attribute(g: Generator, e: dict[str, Any], api: bool) -> Message:
    name = g.rng.choice(["id", "source", "subject", "type"])
    return _structured("nul-attribute", _with(e, **{name: f"{e[name]}\u0000x"}), api)


def _nul_data(g: Generator, e: dict[str, Any], api: bool) -> Message:
    name = _text_field(g, e)
    return _structured("nul-data", _data_with(e, **{name: f"\u0000{e['data'][name]}"}), api)


def _nul_header(g: Generator, e: dict[str, Any], api: bool) -> Message:
    name = g.rng.choice(["ce_id", "ce_source", "ce_subject", "ce_type", "ce_time"])
    value = str(e[name[3:]]).encode()
    return _binary("nul-header", e, {name: value[:2] + b"\x00" + value[2:]})


def _time_out_of_span(g: Generator, e: dict[str, Any], api: bool) -> Message:
    time = g.rng.choice(
        [
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "9999-12-31T23:00:00Z",
            "0000-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
        ]
    )
    if g.rng.random() < 0.5 and e["type"] == "ledger.identity.verified.v1":
        return _structured("time-out-of-span", _data_with(e, expires_at=time), api)
    return _structured("time-out-of-span", _with(e, time=time), api)


def _time_not_text(g: Generator, e: dict[str, Any], api: bool) -> Message:
    choices: list[Any] = [1700000000, "1700000000", 1.7e9, True, None, [], {}, "2026-01-05", "now"]
    time = g.rng.choice(choices)
    return _structured("time-not-rfc3339", _with(e, time=time), api)


def _bit_flip(g: Generator, e: dict[str, Any], api: bool) -> Message:
    raw = bytearray(json.dumps(e).encode())
    for _ in range(g.rng.randint(1, 3)):
        at = g.rng.randrange(len(raw))
        raw[at] ^= 1 << g.rng.randrange(8)
    return Message("bit-flip", bytes(raw), [], str(e["subject"]).encode(), api)


def _truncated(g: Generator, e: dict[str, Any], api: bool) -> Message:
    raw = json.dumps(e).encode()
    return Message(
        "truncated", raw[: g.rng.randrange(len(raw))], [], str(e["subject"]).encode(), api
    )


def _wrong_type(g: Generator, e: dict[str, Any], api: bool) -> Message:
    bad: Any = g.rng.choice([0, -1, 1e308, [], {}, None, True, ["x"], {"a": 1}, "x" * 300])
    if g.rng.random() < 0.3:
        name = g.rng.choice(["id", "source", "subject", "type", "specversion", "data"])
        return _structured("wrong-type", _with(e, **{name: bad}), api)
    name = g.rng.choice(list(e["data"]))
    return _structured("wrong-type", _data_with(e, **{name: bad}), api)


def _huge(g: Generator, e: dict[str, Any], api: bool) -> Message:
    size = g.rng.randint(100_000, 600_000)
    if g.rng.random() < 0.5:
        return _structured("huge-field", _data_with(e, **{_text_field(g, e): "y" * size}), api)
    return _structured("huge-field", _with(e, extension="z" * size), api)


def _not_utf8(g: Generator, e: dict[str, Any], api: bool) -> Message:
    raw = json.dumps(e, ensure_ascii=False).encode()
    at = g.rng.randrange(len(raw))
    garbage = g.rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
    return Message("not-utf8", raw[:at] + garbage + raw[at:], [], str(e["subject"]).encode(), api)


def _empty(g: Generator, e: dict[str, Any], api: bool) -> Message:
    return Message("empty", b"", [], str(e["subject"]).encode(), api)


def _tombstone(g: Generator, e: dict[str, Any], api: bool) -> Message:
    return Message("tombstone", None, [], str(e["subject"]).encode())


def _deep(g: Generator, e: dict[str, Any], api: bool) -> Message:
    depth = g.rng.choice([1100, 5000, 20_000])
    nested = "[" * depth + "]" * depth
    raw = json.dumps(_data_with(e, extra="PLACEHOLDER")).encode()
    raw = raw.replace(b'"PLACEHOLDER"', nested.encode())
    return Message("deep-nesting", raw, [], str(e["subject"]).encode(), api)


def _big_number(g: Generator, e: dict[str, Any], api: bool) -> Message:
    digits = "9" * g.rng.choice([400, 5000, 20_000])
    raw = json.dumps(_data_with(e, grade="PLACEHOLDER")).encode()
    raw = raw.replace(b'"PLACEHOLDER"', digits.encode())
    return Message("big-number", raw, [], str(e["subject"]).encode(), api)


def _data_base64(g: Generator, e: dict[str, Any], api: bool) -> Message:
    event = {k: v for k, v in e.items() if k != "data"}
    event["data_base64"] = base64.b64encode(json.dumps(e["data"]).encode()).decode()
    return _structured("data-base64", event, api)


def _unknown_type(g: Generator, e: dict[str, Any], api: bool) -> Message:
    return _structured(
        "unknown-type", _with(e, type=g.rng.choice(["ledger.nope.v1", "", "x" * 300])), api
    )


def _subject_mismatch(g: Generator, e: dict[str, Any], api: bool) -> Message:
    return _structured("subject-mismatch", _with(e, subject=f"{e['subject']}-other"), api)


def _conflict(g: Generator, e: dict[str, Any], api: bool) -> Message:
    earlier = g.rng.choice(g.valid)
    return _structured("conflict", _with(e, id=earlier["id"], source=earlier["source"]), False)


def _resend(g: Generator, e: dict[str, Any], api: bool) -> Message:
    return _structured("resend", g.rng.choice(g.valid), False)


def _garbage_headers(g: Generator, e: dict[str, Any], api: bool) -> Message:
    choice = g.rng.randrange(3)
    if choice == 0:
        return _binary("garbage-headers", e, {"ce_id": b"\xff\xfe\xfd", "ce_subject": b"\xc3"})
    if choice == 1:
        return _binary("garbage-headers", e, {"ce_specversion": b"0.3", "ce_time": None})
    return _binary("garbage-headers", e, {"content-type": b"text/plain", "ce_x": b"\x00" * 50})


def _huge_id(g: Generator, e: dict[str, Any], api: bool) -> Message:
    return _structured("huge-id", _with(e, id="i" * g.rng.choice([201, 10_000])), api)


def _random_bytes(g: Generator, e: dict[str, Any], api: bool) -> Message:
    return Message(
        "random-bytes",
        secrets.token_bytes(g.rng.randint(1, 500)),
        [],
        str(e["subject"]).encode(),
        api,
    )


def _not_an_object(g: Generator, e: dict[str, Any], api: bool) -> Message:
    value = g.rng.choice([b"[]", b"1", b'"x"', b"null", b"true", b"[1, 2, 3]"])
    return Message("not-an-object", value, [], str(e["subject"]).encode(), api)


def _text_plain(g: Generator, e: dict[str, Any], api: bool) -> Message:
    message = _structured("wrong-content-type", e, True)
    message.content_type = g.rng.choice(["text/plain", "application/xml", "multipart/form-data"])
    return message


HOSTILE = {
    "nul-attribute": _nul_attribute,
    "nul-data": _nul_data,
    "nul-header": _nul_header,
    "time-out-of-span": _time_out_of_span,
    "time-not-rfc3339": _time_not_text,
    "bit-flip": _bit_flip,
    "truncated": _truncated,
    "wrong-type": _wrong_type,
    "huge-field": _huge,
    "not-utf8": _not_utf8,
    "empty": _empty,
    "tombstone": _tombstone,
    "deep-nesting": _deep,
    "big-number": _big_number,
    "data-base64": _data_base64,
    "unknown-type": _unknown_type,
    "subject-mismatch": _subject_mismatch,
    "conflict": _conflict,
    "resend": _resend,
    "garbage-headers": _garbage_headers,
    "huge-id": _huge_id,
    "random-bytes": _random_bytes,
    "not-an-object": _not_an_object,
    "wrong-content-type": _text_plain,
}
#: Kinds that are large: sent seldom, so a run's volume stays moderate.
RARE = {"huge-field", "deep-nesting", "big-number"}


@dataclass
class FuzzResult:
    sent_kafka: int = 0
    sent_api: int = 0
    on_topic: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    missing: int = 0
    api_5xx: int = 0
    api_4xx: int = 0
    api_202: int = 0
    worker_failures: int = 0
    worker_crashes: int = 0
    rejoins: int = 0
    sentinels: int = 0
    sentinels_applied: int = 0
    reads_5xx: int = 0
    verify_ok: bool = False
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: What each message the API took was, by (source, id, digest): the API publishes it
    #: without the `fuzz_kind` header, so its record on the intake is known by its content.
    posted: dict[tuple[str, str, str], str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return (
            self.missing == 0
            and self.api_5xx == 0
            and self.reads_5xx == 0
            and self.worker_failures == 0
            and self.worker_crashes == 0
            and self.sentinels_applied == self.sentinels
            and self.verify_ok
        )

    def count(self, kind: str, what: str) -> None:
        self.by_kind.setdefault(kind, Counter())[what] += 1

    def table_row(self) -> dict[str, Any]:
        return {
            "sent": self.sent_kafka + self.sent_api,
            "via api": self.sent_api,
            "on intake": self.on_topic,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "missing": self.missing,
            "api 5xx": self.api_5xx + self.reads_5xx,
            "worker failures": self.worker_failures,
            "crashes": self.worker_crashes,
            "rejoins": self.rejoins,
            "sentinels": f"{self.sentinels_applied}/{self.sentinels}",
            "verify": "ok" if self.verify_ok else "FAILED",
            "seconds": round(self.seconds, 1),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.table_row(),
            "clean": self.clean,
            "reasons": dict(self.reasons),
            "by_kind": {k: dict(v) for k, v in self.by_kind.items()},
            "notes": self.notes,
        }


def _post(client: httpx.Client, message: Message, result: FuzzResult) -> None:
    for _attempt in range(20):
        try:
            response = client.post(
                "/v1/events",
                content=message.value or b"",
                headers={"content-type": message.content_type},
            )
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        result.count(message.kind, f"http {response.status_code}")
        if response.status_code >= 500:
            result.api_5xx += 1
            result.notes.append(
                f"POST {message.kind}: {response.status_code} {response.text[:200]}"
            )
        elif response.status_code == 202:
            result.api_202 += 1
            with contextlib.suppress(RejectionError):
                taken = parse(message.value or b"", [])
                result.posted[(taken.source, taken.message_id, taken.digest)] = message.kind
        else:
            result.api_4xx += 1
        return
    result.notes.append(f"POST {message.kind}: no answer after 20 tries")
    result.api_5xx += 1


def _read_intake(own: Scratch) -> list[Record]:
    settings = own.settings
    consumer = Consumer(own.services.kafka_bootstrap, None, "fuzz-audit", 5000)
    records: list[Record] = []
    try:
        partitions = consumer.assign_all(settings.intake_topic)
        ends = consumer.end_offsets(partitions)
        done = dict.fromkeys(partitions, 0)
        deadline = time.monotonic() + 300
        while any(done[p] < ends[p] for p in partitions) and time.monotonic() < deadline:
            for record in consumer.poll(1000):
                done[(record.topic, record.partition)] = record.offset + 1
                records.append(record)
    finally:
        consumer.close()
    return records


def _account(own: Scratch, result: FuzzResult) -> set[str]:
    """Every record on the intake topic: accepted, rejected, or a duplicate; the learners
    accepted (for the API's read checks)."""
    with bootstrap.connect(own.services) as conn:
        accepted = {
            (int(p), int(o)): (str(s), str(i), str(d))
            for p, o, s, i, d in conn.execute(
                "SELECT partition, kafka_offset, source, message_id, digest"
                " FROM ledger_intake_messages"
            ).fetchall()
        }
        rejected = {
            (int(p), int(o)): str(r)
            for p, o, r in conn.execute(
                "SELECT partition, kafka_offset, reason FROM ledger_rejections"
            ).fetchall()
        }
    digests = {(s, i): d for s, i, d in accepted.values()}
    learners: set[str] = set()
    for record in _read_intake(own):
        result.on_topic += 1
        kind = record.header("fuzz_kind") or _posted_kind(record, result)
        where = (record.partition, record.offset)
        if where in accepted:
            result.accepted += 1
            result.count(kind, "accepted")
            with contextlib.suppress(RejectionError):
                learners.add(parse(record.value, record.headers).subject)
        elif where in rejected:
            result.rejected += 1
            result.reasons[rejected[where]] += 1
            result.count(kind, "rejected")
        else:
            try:
                message = parse(record.value, record.headers)
            except RejectionError as error:
                message = None
                why = error.reason
            if message is not None and digests.get((message.source, message.message_id)) == (
                message.digest
            ):
                result.duplicates += 1
                result.count(kind, "duplicate")
                continue
            result.missing += 1
            result.count(kind, "missing")
            what = "parsed" if message is not None else why
            result.notes.append(f"missing: {kind} at {where} ({what})")
    return learners


def _posted_kind(record: Record, result: FuzzResult) -> str:
    """The kind of a message the API published (it carries no `fuzz_kind` header)."""
    try:
        message = parse(record.value, record.headers)
    except RejectionError:
        return "posted, unknown"
    return result.posted.get(
        (message.source, message.message_id, message.digest), "posted, unknown"
    )


def run_fuzz(
    base: Settings, services: Services, total: int, seed: int, logs: Path, console: Console
) -> FuzzResult:
    """Send `total` messages and sentinels through the real pipeline; account for each."""
    started = time.monotonic()
    result = FuzzResult()
    generator = Generator(seed)
    messages = generator.messages(total)
    with scratch(base, services, f"fuzz-{secrets.token_hex(2)}.") as own:
        bootstrap.prepare_topics(own.settings, own.services)
        sentinels = generator.sentinels(own.settings.partitions)
        result.sentinels = len(sentinels) // 2
        workers = Workers(worker_env(own, API_PORT), logs / "fuzz", STANDARD_ROLES).start()
        try:
            api_up(API_URL)
            console.print(
                f"fuzz: sending {len(messages)} messages, then {len(sentinels)} sentinels"
            )
            _send(own, messages, sentinels, result, console)
            console.print("fuzz: all sent; waiting for the pipeline to catch up")
            deadline = time.monotonic() + SETTLE_TIMEOUT_S + total / 500
            if not wait_settled(own, deadline, lambda s: _say_stages(console, s)):
                result.notes.append("the pipeline did not catch up in time")
            console.print("fuzz: caught up; accounting for every record")
            _check(own, result)
        finally:
            workers.stop()
        result.worker_failures = sum(1 for _ in workers.log_lines("worker.failed"))
        result.worker_crashes = workers.crashes + sum(
            1 for _ in workers.log_lines("worker.crashed")
        )
        result.rejoins = sum(1 for _ in workers.log_lines("worker.stalled"))
    result.seconds = time.monotonic() - started
    result.notes = result.notes[:20]  # the table says how many; a few name examples
    return result


def _say_stages(console: Console, stages: Stages) -> None:
    """One progress line while the pipeline drains: what each stage has handled so far."""
    console.print(
        f"fuzz: intake {stages.intake_done:,} of {stages.intake_end:,} records,"
        f" {stages.stored:,} events stored, {stages.rejections:,} rejected,"
        f" projections {stages.projections_behind:,} behind"
    )


def _send(
    own: Scratch,
    messages: list[Message],
    sentinels: list[Message],
    result: FuzzResult,
    console: Console,
) -> None:
    """The catalog (waited for), the messages through Kafka and the API, then the sentinels;
    a progress line every 10,000 records and every 500 API calls."""
    settings = own.settings
    producer = Producer(own.services.kafka_bootstrap, "fuzz", delivery_timeout_ms=120_000)
    try:
        catalog = {
            "specversion": "1.0",
            "id": "fz-catalog",
            "source": SOURCE,
            "type": "ledger.specialization.published.v1",
            "time": (T0 - timedelta(days=30)).isoformat(),
            "subject": SPEC,
            "data": CATALOG_DATA,
        }
        producer.send_all([_record(settings, _structured("catalog", catalog, False))])
        result.count("catalog", "sent")
        result.sent_kafka += 1
        wait_for_catalog(own.services, [SPEC])
        through_kafka = [m for m in messages if not m.via_api]
        for start in range(0, len(through_kafka), 2000):
            chunk = through_kafka[start : start + 2000]
            producer.send_all([_record(settings, m) for m in chunk], timeout_s=120)
            for m in chunk:
                result.count(m.kind, "sent")
            done = start + len(chunk)
            if done % 10_000 == 0 or done == len(through_kafka):  # chunks of 2,000
                console.print(f"fuzz: {done:,} of {len(through_kafka):,} sent through Kafka")
        result.sent_kafka += len(through_kafka)
        headers = staff_headers(own.services, "fuzz-publisher")
        with httpx.Client(base_url=API_URL, headers=headers, timeout=30) as client:
            through_api = sum(1 for m in messages if m.via_api)
            for m in messages:
                if m.via_api:
                    result.count(m.kind, "sent")
                    _post(client, m, result)
                    result.sent_api += 1
                    if result.sent_api % 500 == 0 or result.sent_api == through_api:
                        console.print(
                            f"fuzz: {result.sent_api:,} of {through_api:,} posted to the API"
                        )
        producer.send_all([_record(settings, m) for m in sentinels])
        result.sent_kafka += len(sentinels)
        for m in sentinels:
            result.count(m.kind, "sent")
    finally:
        producer.close()


def _check(own: Scratch, result: FuzzResult) -> None:
    """Every record accounted for, the sentinels in the read models, the API answering for
    the accepted learners, and `ledger audit verify` passing."""
    learners = _account(own, result)
    with bootstrap.connect(own.services) as conn:
        result.sentinels_applied = sum(
            1
            for n in range(result.sentinels)
            if (p := learner_progress(conn, f"fz-sentinel-{n}")) is not None and p.enrollments
        )
    headers = staff_headers(own.services, "fuzz-reader")
    with httpx.Client(base_url=API_URL, headers=headers, timeout=30) as client:
        for learner in sorted(learners)[:300]:
            quoted = quote(learner, safe="")
            for path in (f"/v1/learners/{quoted}", f"/v1/learners/{quoted}/payments"):
                response = client.get(path)
                if response.status_code >= 500:
                    result.reads_5xx += 1
                    result.notes.append(f"GET {path[:80]}: {response.status_code}")
    ledger, *more_shards = bootstrap.open_shards(own.services)
    try:
        report = verify(ledger, own.settings, own.services, more_shards=more_shards)
    finally:
        for shard in (ledger, *more_shards):
            shard.close()
    result.verify_ok = report.ok
    result.notes.extend(m.message for m in report.mismatches[:5])


def _record(settings: Settings, message: Message) -> OutRecord:
    headers = [*message.headers, ("fuzz_kind", message.kind.encode())]
    return OutRecord(settings.intake_topic, message.key, message.value, headers)
