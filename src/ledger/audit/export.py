"""Exports an outside auditor can check alone: a learner's history as JSON lines of CloudEvents.

Each line is one event in structured mode, exactly as the relay publishes it on
`ledger.events` (same id, type, times and data, `previous_hash` included), plus the extension
attribute `ledgerhash`: the event's own hash in the canonical form of `ledger.domain.chain`
(documented in docs/rules.md). A last line of type `ledger.audit.export_completed.v1` says how
many events there are and the hash of the newest, so a file cut short is caught too.

`check_export` needs nothing but the file: it recomputes every hash and names each problem by
line and event: a line edited (its content no longer hashes to its `ledgerhash`, or to what
the next event links to), a line removed (a version missing), a line moved (versions out of
order), or a summary that does not match.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ledger.application import Ledger
from ledger.domain import learner_aggregate_id
from ledger.domain.chain import GENESIS, chain_hash, hash_of_event
from ledger.outbound import subject_of, to_record

COMPLETED_TYPE = "ledger.audit.export_completed.v1"


class NothingToExportError(LookupError):
    """The event store has no stream for this learner."""


def export_lines(ledger: Ledger, learner_id: str) -> Iterator[str]:
    """The learner's history as JSON lines, oldest first, then the summary line."""
    aggregate_id = learner_aggregate_id(learner_id)
    subject = ""
    count = 0
    head = GENESIS
    for event in ledger.events.get(aggregate_id):
        if not subject:
            subject = subject_of(event)
        record = to_record("export", event, subject)
        attributes: dict[str, Any] = {
            k.removeprefix("ce_"): (v or b"").decode()
            for k, v in record.headers
            if k.startswith("ce_")
        }
        head = hash_of_event(event)
        attributes.update(
            datacontenttype="application/json",
            data=json.loads(record.value or b"{}"),
            ledgerhash=head,
        )
        count += 1
        yield json.dumps(attributes, ensure_ascii=False, separators=(",", ":"))
    if count == 0:
        raise NothingToExportError(f"the event store has no history for learner {learner_id!r}")
    yield json.dumps(
        {
            "specversion": "1.0",
            "id": f"{aggregate_id}:export",
            "source": "urn:ledger:audit",
            "type": COMPLETED_TYPE,
            "subject": subject,
            "datacontenttype": "application/json",
            "data": {"events": count, "head": head},
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an export: where, and what."""

    line: int | None
    event_id: str | None
    kind: str  # malformed | edited | removed | reordered | chain_broken | summary
    message: str


@dataclass(frozen=True)
class _Line:
    number: int
    event_id: str
    version: int
    claimed_previous: str | None
    claimed_hash: str | None
    computed: str


def _stable_type(ce_type: str) -> str:
    head, _, version = ce_type.rpartition(".v")
    return head if head and version.isdigit() else ce_type


def _read(lines: Iterable[str]) -> tuple[list[_Line], dict[str, Any] | None, list[Problem]]:
    events: list[_Line] = []
    summary: dict[str, Any] | None = None
    problems: list[Problem] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            doc = json.loads(text)
            if doc.get("type") == COMPLETED_TYPE:
                summary = doc
                continue
            data = doc["data"]
            event_id = str(doc["id"])
            version = int(event_id.rsplit(":", 1)[1])
            computed = chain_hash(event_id, _stable_type(doc["type"]), doc["recordedtime"], data)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
            problems.append(
                Problem(number, None, "malformed", f"line {number} is not a ledger event: {error}")
            )
            continue
        events.append(
            _Line(
                number,
                event_id,
                version,
                data.get("previous_hash"),
                doc.get("ledgerhash"),
                computed,
            )
        )
    return events, summary, problems


def _edited(events: list[_Line]) -> list[Problem]:
    return [
        Problem(
            line.number,
            line.event_id,
            "edited",
            f"line {line.number} (event {line.event_id}) was edited: its content hashes to "
            f"{line.computed[:12]}…, the ledger recorded {line.claimed_hash[:12]}…",
        )
        for line in events
        if line.claimed_hash is not None and line.claimed_hash != line.computed
    ]


def _reordered(events: list[_Line]) -> list[Problem]:
    return [
        Problem(
            after.number,
            after.event_id,
            "reordered",
            f"line {after.number} (event {after.event_id}, version {after.version}) comes "
            f"after version {before.version}: lines were moved",
        )
        for before, after in itertools.pairwise(events)
        if after.version < before.version
    ]


def _removed(by_version: dict[int, _Line], expected: int) -> list[Problem]:
    aggregate = next(iter(by_version.values())).event_id.rsplit(":", 1)[0]
    return [
        Problem(
            None,
            f"{aggregate}:{version}",
            "removed",
            f"event {aggregate}:{version} (version {version}) is missing: a line was removed",
        )
        for version in range(1, max(*by_version, expected) + 1)
        if version not in by_version
    ]


def _broken_links(by_version: dict[int, _Line], edited: set[int]) -> list[Problem]:
    problems = []
    for version, line in sorted(by_version.items()):
        previous = by_version.get(version - 1)
        if version > 1 and previous is None:
            continue  # reported as removed
        link = GENESIS if previous is None else previous.computed
        if line.claimed_previous != link and (version - 1) not in edited:
            problems.append(
                Problem(
                    line.number,
                    line.event_id,
                    "chain_broken",
                    f"line {line.number} (event {line.event_id}) does not link to the event "
                    "before it: one of the two was altered",
                )
            )
    return problems


def _summary(summary: dict[str, Any] | None, newest: _Line) -> list[Problem]:
    if summary is None:
        return [Problem(None, None, "summary", "the summary line is missing: the file was cut")]
    head = str(summary["data"].get("head", ""))
    if head != newest.computed:
        return [
            Problem(
                None,
                None,
                "summary",
                f"the newest event does not hash to the head the summary records ({head[:12]}…)",
            )
        ]
    return []


def check_export(lines: Iterable[str]) -> list[Problem]:
    """Every problem with an export (an empty list: the file is intact)."""
    events, summary, problems = _read(lines)
    if not events:
        return [*problems, Problem(None, None, "malformed", "the file holds no ledger events")]
    edited = _edited(events)
    by_version = {line.version: line for line in events}
    expected = int(summary["data"]["events"]) if summary else max(by_version)
    return [
        *problems,
        *edited,
        *_reordered(events),
        *_removed(by_version, expected),
        *_broken_links(by_version, {by_version_of(p) for p in edited}),
        *_summary(summary, by_version[max(by_version)]),
    ]


def by_version_of(problem: Problem) -> int:
    """The version in a problem's event id."""
    return int((problem.event_id or ":0").rsplit(":", 1)[1])
