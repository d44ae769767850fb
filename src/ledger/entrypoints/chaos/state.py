"""The end state of a chaos run, and how it compares with the fault-free run of the same load.

What is compared, after the pipeline has caught up:

- the event store: every stream, event by event (versions contiguous from 1), in order;
- what the intake accepted ((source, id) pairs) and rejected (by reason);
- `ledger.events` against the store, by `ledger audit verify` (each stored event present once, in
  order per learner; identical re-publications counted, not reported), which also checks every
  hash chain and every read model against a rebuild;
- every read model's tables and the retention figures, row for row.

Two runs differ in what is random by design (certificate ids and verification codes, K4) and in
recorded times (and so in the hash chain's links): events are compared without their
`previous_hash`, and each random id is replaced, in both, by its place in its learner's history.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
import psycopg

from ledger.application import Ledger
from ledger.audit.verify import verify
from ledger.domain.chain import event_data
from ledger.entrypoints import bootstrap
from ledger.outbound import subject_of
from ledger.settings import Services, Settings
from ledger.sharding import Layout
from projections import generations
from projections.catalog import READ_MODELS
from projections.read_models import retention
from projections.rebuild import table_dump

#: Event fields holding values drawn at random (K4), one or many.
_RANDOM_FIELDS = ("certificate_id", "verification_code")
_RANDOM_LISTS = ("course_certificate_ids",)


@dataclass
class EndState:
    """A run's end state, normalised so two runs of the same load can be compared."""

    #: Each stream (by subject) as its events' normalised JSON, in version order.
    streams: dict[str, list[str]] = field(default_factory=dict)
    #: Versions missing or repeated inside streams (must be 0: the store's key forbids twice).
    version_gaps: int = 0
    accepted: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    #: `ledger audit verify`'s findings by kind (`missing`, `twice`, `order`, ...).
    verify: Counter[str] = field(default_factory=Counter)
    verify_examples: list[str] = field(default_factory=list)
    republished: int = 0
    #: Every read-model table (`model.table`) as its normalised rows, sorted.
    tables: dict[str, list[str]] = field(default_factory=dict)
    retention: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(len(s) for s in self.streams.values())


def capture(
    settings: Settings, services: Services, ledger: Ledger, more_shards: Sequence[Ledger] = ()
) -> EndState:
    """The end state; with shards (`more_shards`), each stream from its home shard (a catalog
    copy elsewhere is left to `ledger audit verify`'s catalog check) and each accepted or
    rejected message counted where its partition's learners live."""
    state = EndState()
    translation: dict[str, str] = {}
    counts: Counter[str] = Counter()
    versions: dict[str, list[int]] = {}
    shards = [ledger, *more_shards]
    layout = Layout(len(shards), settings.partitions)
    for index, shard in enumerate(shards):
        _read_streams(shard, layout, index, state, translation, counts, versions)
    for found in versions.values():
        state.version_gaps += sum(1 for n, v in enumerate(sorted(found), 1) if n != v)
    for index, url in enumerate(services.shard_urls):
        home = layout.partitions_of(index)
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM ledger_intake_messages WHERE partition = ANY(%s)", (home,)
            ).fetchone()
            state.accepted += int(row[0]) if row else 0
            state.rejections += Counter(
                str(reason)
                for (reason,) in conn.execute(
                    "SELECT reason FROM ledger_rejections WHERE partition = ANY(%s)", (home,)
                ).fetchall()
            )
    with bootstrap.connect(services) as conn:
        pattern = _pattern(translation)
        for model in READ_MODELS:
            with conn.cursor() as cur:
                schema = generations.live_schema(cur, model.name)
            for table, rows in table_dump(conn, schema, model, without_store_order=True).items():
                state.tables[f"{model.name}.{table}"] = sorted(
                    _substitute(pattern, translation, r) for r in rows
                )
        state.retention = sorted(
            orjson.dumps(r.as_dict(), option=orjson.OPT_SORT_KEYS, default=str).decode()
            for r in retention.funnel(conn)
        )
    report = verify(ledger, settings, services, more_shards=more_shards)
    state.republished = report.republished
    state.verify = Counter(m.kind or m.check for m in report.mismatches)
    state.verify_examples = [m.message for m in report.mismatches[:5]]
    if report.pending:
        state.verify["pending"] += report.pending
    return state


def _read_streams(
    ledger: Ledger,
    layout: Layout,
    shard: int,
    state: EndState,
    translation: dict[str, str],
    counts: Counter[str],
    versions: dict[str, list[int]],
) -> None:
    subjects: dict[UUID, str] = {}
    recorder = ledger.ledger_recorder
    position = 0
    while True:
        page = recorder.select_notifications(start=position + 1, limit=2000)
        if not page:
            break
        for notification in page:
            event: Any = ledger.mapper.to_domain_event(notification)
            aggregate = event.originator_id
            if aggregate not in subjects:
                subjects[aggregate] = subject_of(event)
            subject = subjects[aggregate]
            if layout.shard_of(subject) != shard:
                continue  # a copy of the catalog: its home shard's is the one compared
            data = event_data(event)
            data.pop("previous_hash", None)
            _learn_random(data, subject, translation, counts)
            normalised = _replace({"type": type(event).__qualname__, "data": data}, translation)
            state.streams.setdefault(subject, []).append(
                orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS).decode()
            )
            versions.setdefault(subject, []).append(event.originator_version)
        position = page[-1].id


def _learn_random(
    data: dict[str, Any], subject: str, translation: dict[str, str], counts: Counter[str]
) -> None:
    """Give each random value of this event a name by its place in its learner's history."""
    values = [data.get(f) for f in _RANDOM_FIELDS]
    for name in _RANDOM_LISTS:
        values.extend(data.get(name) or [])
    for value in values:
        if isinstance(value, str) and value not in translation:
            counts[subject] += 1
            translation[value] = f"<random {counts[subject]} of {subject}>"


def _replace(value: Any, translation: dict[str, str]) -> Any:
    if isinstance(value, str):
        return translation.get(value, value)
    if isinstance(value, list):
        return [_replace(v, translation) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, translation) for k, v in value.items()}
    return value


def _pattern(translation: dict[str, str]) -> re.Pattern[str] | None:
    if not translation:
        return None
    return re.compile("|".join(re.escape(k) for k in sorted(translation, key=len, reverse=True)))


def _substitute(pattern: re.Pattern[str] | None, translation: dict[str, str], text: str) -> str:
    return text if pattern is None else pattern.sub(lambda m: translation[m.group(0)], text)


@dataclass
class Difference:
    """How a run's end state departs from the fault-free one."""

    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    diverged: int = 0
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.notes) < 10:
            self.notes.append(text)


def compare(base: EndState, run: EndState) -> Difference:
    """Lost, duplicated, reordered events and messages; diverged rows and checks."""
    diff = Difference()
    _compare_streams(base, run, diff)
    _compare_intake(base, run, diff)
    diff.lost += run.verify["missing"] + run.verify["pending"]
    diff.duplicated += run.verify["twice"] + run.verify["extra"]
    diff.reordered += run.verify["order"]
    diff.diverged += sum(run.verify[kind] for kind in ("altered", "lacking", "diverged"))
    diff.duplicated += run.verify["misplaced"]  # published by a shard that is not its home
    diff.notes.extend(run.verify_examples[: 10 - len(diff.notes)])
    for table in sorted(set(base.tables) | set(run.tables)):
        expected_rows = Counter(base.tables.get(table, []))
        found_rows = Counter(run.tables.get(table, []))
        if expected_rows != found_rows:
            changed = sum(((expected_rows - found_rows) + (found_rows - expected_rows)).values())
            diff.diverged += changed
            diff.note(f"{table}: {changed} rows differ from the fault-free run")
    if base.retention != run.retention:
        diff.diverged += 1
        diff.note("the retention figures differ from the fault-free run")
    return diff


def _compare_streams(base: EndState, run: EndState, diff: Difference) -> None:
    for subject in sorted(set(base.streams) | set(run.streams)):
        expected = base.streams.get(subject, [])
        found = run.streams.get(subject, [])
        if expected == found:
            continue
        missing = Counter(expected) - Counter(found)
        extra = Counter(found) - Counter(expected)
        diff.lost += sum(missing.values())
        diff.duplicated += sum(extra.values())
        if not missing and not extra:
            diff.reordered += 1
            diff.note(f"{subject}: the same events in another order")
        else:
            diff.note(f"{subject}: {sum(missing.values())} missing, {sum(extra.values())} extra")
    if run.version_gaps:
        diff.duplicated += run.version_gaps
        diff.note(f"{run.version_gaps} stream versions missing or repeated")


def _compare_intake(base: EndState, run: EndState, diff: Difference) -> None:
    """Messages accepted, and rejections by reason: each exactly as often as without faults."""
    if run.accepted != base.accepted:
        gap = base.accepted - run.accepted
        diff.lost += max(gap, 0)
        diff.duplicated += max(-gap, 0)
        diff.note(f"{run.accepted} messages accepted, {base.accepted} without faults")
    for reason in sorted(set(base.rejections) | set(run.rejections)):
        expected, found = base.rejections[reason], run.rejections[reason]
        if expected != found:
            diff.lost += max(expected - found, 0)
            diff.duplicated += max(found - expected, 0)
            diff.note(f"rejections {reason!r}: {found}, {expected} without faults")
