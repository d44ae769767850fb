"""A realistic load of inbound messages, and what the ledger must have made of it.

`build_load` returns valid CloudEvents for many learners (in each learner's order), bad messages
of every kind with the reason each must be rejected with, and `expected_histories` computes what
each learner's stored history must be by running the valid messages through an in-memory
`Ledger` with the very same handlers.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from commands.cloudevents import parse
from commands.handlers import handle
from ledger.application import Ledger
from ledger.broker import OutRecord

from ..scenarios import DS, DS_CAPSTONE, DS_COURSES, T0, catalog_data

PUBLISHED = catalog_data(DS)


@dataclass
class Load:
    catalog: list[OutRecord] = field(default_factory=list)
    valid: list[OutRecord] = field(default_factory=list)
    bad: list[tuple[OutRecord, str]] = field(default_factory=list)  # (record, expected reason)


def _structured(
    topic: str,
    run: str,
    n: int,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    days: float,
    source: str = "urn:load",
) -> OutRecord:
    value = json.dumps(
        {
            "specversion": "1.0",
            "id": f"{run}-{n}",
            "source": source,
            "type": event_type,
            "time": (T0 + timedelta(days=days)).isoformat(),
            "subject": subject,
            "data": data,
        }
    ).encode()
    return OutRecord(
        topic, subject.encode(), value, [("content-type", b"application/cloudevents+json")]
    )


def build_load(
    topic: str, run: str, learners: int, per_learner: int, bad: int, seed: int = 5
) -> Load:
    rng = random.Random(seed)
    load = Load()
    counter = iter(range(1, 10**9))
    load.catalog.append(
        _structured(
            topic, run, next(counter), "ledger.specialization.published.v1", DS, PUBLISHED, 0
        )
    )
    for n in range(learners):
        learner = f"{run}-learner-{n}"
        day = rng.uniform(1, 5)
        messages: list[tuple[str, dict[str, Any]]] = [
            (
                "ledger.learner.enrolled.v1",
                {
                    "learner_id": learner,
                    "specialization_id": DS,
                    "intent": rng.choice(["certificate", "audit"]),
                },
            ),
            ("ledger.identity.verified.v1", {"learner_id": learner, "method": "id"}),
        ]
        for i in range(per_learner - 2):
            course = rng.choice([*DS_COURSES, DS_CAPSTONE])
            kind = rng.random()
            if kind < 0.45:
                messages.append(
                    (
                        "ledger.course.graded.v1",
                        {
                            "learner_id": learner,
                            "course_id": course,
                            "grade": str(round(rng.uniform(0.5, 1), 2)),
                            "passed": rng.random() < 0.8,
                        },
                    )
                )
            elif kind < 0.85:
                messages.append(
                    (
                        "ledger.payment.captured.v1",
                        {
                            "learner_id": learner,
                            "payment_id": f"{learner}-pay-{i}",
                            "course_id": course,
                            "amount": rng.choice(["49.00", "49.00", "10.00"]),
                            "currency": "USD",
                        },
                    )
                )
            elif kind < 0.95:
                messages.append(
                    (
                        "ledger.payment.refund_requested.v1",
                        {"learner_id": learner, "payment_id": f"{learner}-pay-{rng.randint(0, i)}"},
                    )
                )
            else:
                messages.append(
                    ("ledger.aid.granted.v1", {"learner_id": learner, "course_id": course})
                )
        for event_type, data in messages:
            day += rng.uniform(0.1, 3)
            load.valid.append(
                _structured(topic, run, next(counter), event_type, data["learner_id"], data, day)
            )
    kinds = _bad_kinds(topic, run, counter, load.valid)
    for i in range(bad):
        load.bad.append(kinds[i % len(kinds)](i))
    return load


def _bad_kinds(topic: str, run: str, counter: Any, valid: list[OutRecord]) -> list[Any]:
    def raw(value: bytes, headers: list[tuple[str, bytes | None]] | None = None) -> OutRecord:
        return OutRecord(topic, b"bad", value, headers or [])

    def not_json(i: int) -> tuple[OutRecord, str]:
        return raw(b'{"specversion": "1.0", ' + str(i).encode()), "not_json"

    def not_cloudevent(i: int) -> tuple[OutRecord, str]:
        return raw(json.dumps({"hello": i}).encode()), "not_cloudevent"

    def unknown_type(i: int) -> tuple[OutRecord, str]:
        return _structured(
            topic, run, next(counter), "ledger.learner.teleported.v1", "x", {"learner_id": "x"}, 1
        ), "unknown_type"

    def schema_violation(i: int) -> tuple[OutRecord, str]:
        return _structured(
            topic,
            run,
            next(counter),
            "ledger.course.graded.v1",
            "x",
            {"learner_id": "x", "course_id": "c", "grade": "2", "passed": True},
            1,
        ), "schema_violation"

    def subject_mismatch(i: int) -> tuple[OutRecord, str]:
        return _structured(
            topic,
            run,
            next(counter),
            "ledger.aid.granted.v1",
            "someone-else",
            {"learner_id": "x", "course_id": "c"},
            1,
        ), "subject_mismatch"

    def conflict(i: int) -> tuple[OutRecord, str]:
        original = json.loads(valid[i].value or b"")
        original["time"] = (T0 + timedelta(days=999)).isoformat()  # same id, other content
        return (
            OutRecord(topic, valid[i].key, json.dumps(original).encode(), valid[i].headers),
            "conflict",
        )

    def unknown_specialization(i: int) -> tuple[OutRecord, str]:
        return _structured(
            topic,
            run,
            next(counter),
            "ledger.specialization.retired.v1",
            f"never-{i}",
            {"specialization_id": f"never-{i}"},
            1,
        ), "unknown_specialization"

    def binary_not_json(i: int) -> tuple[OutRecord, str]:
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", f"bin-{i}".encode()),
            ("ce_source", b"urn:load"),
            ("ce_type", b"ledger.aid.granted.v1"),
            ("ce_time", T0.isoformat().encode()),
            ("ce_subject", b"x"),
        ]
        return raw(b"<xml/>", headers), "not_json"

    return [
        not_json,
        not_cloudevent,
        unknown_type,
        schema_violation,
        subject_mismatch,
        conflict,
        unknown_specialization,
        binary_not_json,
    ]


def expected_histories(load: Load) -> dict[str, list[tuple[str, str]]]:
    """Each learner's expected history as (event class, business time) pairs."""
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        for record in [*load.catalog, *load.valid]:
            with ledger.session() as session:
                handle(session, parse(record.value, record.headers))
        histories: dict[str, list[tuple[str, str]]] = {}
        for record in load.valid:
            learner_id = (record.key or b"").decode()
            if learner_id in histories:
                continue
            learner = ledger.get_learner(learner_id)
            assert learner is not None
            histories[learner_id] = history_of(ledger, learner.id)
        return histories
    finally:
        ledger.close()


def history_of(ledger: Ledger, aggregate_id: Any) -> list[tuple[str, str]]:
    return [(type(e).__name__, e.at.isoformat()) for e in ledger.events.get(aggregate_id)]


def interleave(
    valid: list[OutRecord], bad: list[tuple[OutRecord, str]], seed: int = 9
) -> list[OutRecord]:
    """The valid records in order, with the bad ones dropped in at random places."""
    rng = random.Random(seed)
    records = list(valid)
    for record, reason in bad:
        if reason != "conflict":
            records.insert(rng.randint(0, len(records)), record)
    # A conflict reuses an accepted message's id: it must come after the message it conflicts with.
    records.extend(record for record, reason in bad if reason == "conflict")
    return records
