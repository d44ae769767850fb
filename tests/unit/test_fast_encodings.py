"""orjson writes the same bytes as the standard library where the ledger swapped it in.

The event store's transcoder and the hash chain are formats: stores written before must still
read, and hashes recorded before must still verify. So the fast encoders are held to the slow,
obvious ones byte for byte, on every event real scenarios produce and on generated values.
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import JSONTranscoder
from hypothesis import given
from hypothesis import strategies as st

from commands.cloudevents import parse
from commands.handlers import handle
from ledger.application import Ledger
from ledger.domain import Learner, Specialization
from ledger.domain.chain import ENVELOPE_FIELDS, chain_hash, event_data, hash_of_event, plain
from ledger.entrypoints.bench.intake import bench_messages
from ledger.transcoder import FastJSONTranscoder

from ..scenarios import data_science_learner


def _transcoders() -> tuple[JSONTranscoder, FastJSONTranscoder]:
    app = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    slow, fast = JSONTranscoder(), FastJSONTranscoder()
    app.register_transcodings(slow)
    app.register_transcodings(fast)
    app.close()
    return slow, fast


def _scenario_events() -> list[Any]:
    """Every event of the rulebook's acceptance scenario and of the benchmark's message mix."""
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        data_science_learner(ledger, seed=3)
        records = bench_messages("intake", 600, 40)
        with ledger.session() as session:
            for record in records:
                handle(session, parse(record.value, record.headers))
        stored = ledger.recorder.select_notifications(start=1, limit=100_000)
        return [ledger.mapper.to_domain_event(s) for s in stored]
    finally:
        ledger.close()


def _state(event: Any) -> dict[str, Any]:
    """What eventsourcing's mapper hands the transcoder: the event's dict minus its identity."""
    return {
        k: v
        for k, v in vars(event).items()
        if k not in ("originator_id", "originator_version", "originator_topic")
    }


def test_scenario_events_encode_and_hash_identically() -> None:
    slow, fast = _transcoders()
    events = _scenario_events()
    kinds = {type(e).__name__ for e in events}
    assert len(events) > 500
    assert {"CourseCertified", "SpecializationCertified", "CoursePaid", "RefundGranted"} <= kinds
    for event in events:
        state = _state(event)
        assert fast.encode(state) == slow.encode(state), type(event).__name__
        assert fast.decode(fast.encode(state)) == slow.decode(slow.encode(state))
        canonical_hash = chain_hash(
            f"{event.originator_id}:{event.originator_version}",
            type(event).TOPIC,
            event.timestamp.isoformat(),
            event_data(event),
        )
        assert hash_of_event(event) == canonical_hash, type(event).__name__
        assert event_data(event) == _plainly(event), type(event).__name__


def _plainly(event: Any) -> dict[str, Any]:
    """`event_data` the obvious, slow way."""
    return {k: plain(v) for k, v in vars(event).items() if k not in ENVELOPE_FIELDS}


def _event_classes() -> list[type[DomainEvent]]:
    found = []
    for owner in (Learner, Specialization):
        for value in vars(owner).values():
            if isinstance(value, type) and issubclass(value, DomainEvent):
                found.append(value)
    return found


def test_no_event_field_is_a_uuid() -> None:
    """orjson cannot pass UUIDs to the transcoding that eventsourcing registers for them."""
    classes = _event_classes()
    assert len(classes) > 20
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for name, hint in hints.items():
            if name in ENVELOPE_FIELDS or typing.get_origin(hint) is typing.ClassVar:
                continue
            assert "UUID" not in repr(hint), f"{cls.__qualname__}.{name}: {hint!r}"


_texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
_times = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(seconds=-90))]
    ),
)
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    _texts,
    _times,
    st.decimals(allow_nan=False, allow_infinity=False),
    st.lists(_texts, max_size=4).map(tuple),
)


@given(st.dictionaries(_texts, _values, max_size=6))
def test_transcoders_agree_on_generated_state(state: dict[str, Any]) -> None:
    slow, fast = _transcoders()
    assert fast.encode(state) == slow.encode(state)


class _Probe:
    """Just enough of a domain event for `hash_of_event`."""

    TOPIC = "ledger.learner.probe"

    def __init__(self, data: dict[str, Any], at: datetime) -> None:
        self.originator_id = UUID(int=7)
        self.originator_version = 3
        self.timestamp = at
        self.__dict__.update(data)


@given(st.dictionaries(_texts.filter(lambda k: k not in ENVELOPE_FIELDS), _values), _times)
def test_hash_of_event_is_the_canonical_hash(data: dict[str, Any], at: datetime) -> None:
    probe = _Probe(data, at)
    assert event_data(probe) == _plainly(probe)
    expected = chain_hash(
        "00000000-0000-0000-0000-000000000007:3", _Probe.TOPIC, at.isoformat(), event_data(probe)
    )
    assert hash_of_event(probe) == expected


def test_decimal_exponents_survive() -> None:
    slow, fast = _transcoders()
    state = {"amount": Decimal("1E+2"), "at": datetime(2026, 1, 1, tzinfo=UTC)}
    assert fast.encode(state) == slow.encode(state)
