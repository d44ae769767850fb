"""Which records of `ledger.events` a read model applies: each event once, whatever the relay
republished and in whatever order a failed page landed (`projections.positions`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from ledger.application import Ledger
from ledger.broker import Record
from ledger.outbound import Relayed, relayed_in_order
from projections.applying import Admissions, Batch, new_events, read_batch
from projections.events import MalformedEventError, read_event
from projections.positions import Partition, Seen

from .. import read_scenario


@pytest.fixture(scope="module")
def template() -> list[Record]:
    """The read scenario's events (about thirty), as records of one partition without stamps."""
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        read_scenario.build(ledger)
        return [
            Record(r.topic, 0, n, r.key, r.value, list(r.headers))
            for n, r in enumerate(read_scenario.records(ledger))
        ]
    finally:
        ledger.close()


def stamped(records: Sequence[Record], stamps: Iterable[tuple[int, int]]) -> list[Record]:
    """The records at consecutive offsets, each with its (position, relayed-through) stamp."""
    out = []
    for offset, (record, (position, through)) in enumerate(zip(records, stamps, strict=True)):
        headers = [(k, v) for k, v in record.headers if not k.startswith("ledger_")]
        headers += Relayed(position, through).headers()
        out.append(record._replace(offset=offset, headers=headers))
    return out


def applied(records: Sequence[Record], batch_size: int = 1000) -> list[int]:
    """Positions applied when the records are read in batches of `batch_size`, in order."""
    seen: dict[Partition, Seen] = {}
    positions: list[int] = []
    for start in range(0, len(records), batch_size):
        batch: Batch = read_batch(records[start : start + batch_size])
        positions += [e.position for e in new_events(batch, seen)]
    return positions


def test_every_event_of_a_clean_log_is_applied_once_in_order(template: list[Record]) -> None:
    records = stamped(template, [(n + 1, n - n % 4) for n in range(len(template))])
    assert applied(records, batch_size=3) == list(range(1, len(template) + 1))


def test_a_page_sent_again_after_a_relay_restart_changes_nothing(template: list[Record]) -> None:
    pages = [(n + 1, n - n % 5) for n in range(10)]
    resent = pages[5:]  # the relay died before storing that the second page was sent
    records = stamped(template[: 10 + 5], [*pages, *resent])
    assert applied(records, batch_size=4) == list(range(1, 11))


def test_a_relay_restarted_from_the_start_changes_nothing(template: list[Record]) -> None:
    first = [(n + 1, n - n % 5) for n in range(10)]
    again = [(n + 1, n - n % 5) for n in range(10)]
    records = stamped(template[:20], [*first, *again])
    assert applied(records) == list(range(1, 11))


def test_a_page_that_landed_its_later_records_only_is_completed_by_the_resend(
    template: list[Record],
) -> None:
    """A send that failed halfway can leave 3 missing while 4 and 5 landed; the relay resends
    the whole page (1-5, relayed through 0), and only 3 is new then."""
    landed = [(1, 0), (2, 0), (4, 0), (5, 0)]
    resent = [(p, 0) for p in range(1, 6)]
    after = [(6, 5), (7, 5)]
    records = stamped(template[:11], [*landed, *resent, *after])
    assert applied(records, batch_size=2) == [1, 2, 4, 5, 3, 6, 7]


def test_what_was_seen_is_forgotten_once_the_relay_vouches_for_it() -> None:
    seen = Seen()
    assert [seen.admit(p, 0) for p in (1, 2, 3)] == [True, True, True]
    assert seen.admit(2, 0) is False
    assert seen.admit(4, 3) is True
    assert seen == Seen(through=3, above={4})
    assert seen.admit(3, 3) is False  # at or below what the relay vouched for


def test_partitions_are_deduped_apart(template: list[Record]) -> None:
    one = stamped(template[:3], [(1, 0), (3, 0), (5, 0)])
    other = [r._replace(partition=1) for r in stamped(template[3:6], [(2, 0), (4, 0), (6, 0)])]
    resent = stamped(template[:3], [(1, 0), (3, 0), (5, 0)])
    assert applied([*one, *other, *resent]) == [1, 3, 5, 2, 4, 6]


def test_the_relay_stamps_pages_of_the_order_it_is_given(template: list[Record]) -> None:
    from ledger.broker import OutRecord

    out = [OutRecord(r.topic, r.key, r.value, r.headers) for r in template[:7]]
    stamps = [
        (int(h["ledger_position"] or b""), int(h["ledger_relayed_through"] or b""))
        for h in (dict(r.headers) for r in relayed_in_order(out, page=3))
    ]
    assert stamps == [(1, 0), (2, 0), (3, 0), (4, 3), (5, 3), (6, 3), (7, 6)]


def test_models_that_stand_at_the_same_place_share_what_is_new(template: list[Record]) -> None:
    records = stamped(template[:6], [(n + 1, 0) for n in range(6)])
    batch = read_batch(records)
    admissions = Admissions(batch)
    behind = {("ledger.events", 0): Seen(0, {1, 2})}
    first, after = admissions.of({("ledger.events", 0): Seen(0, {1, 2})})
    again, shared = admissions.of(behind)
    assert [e.position for e in first] == [3, 4, 5, 6]
    assert again is first and shared is after
    assert after == {("ledger.events", 0): Seen(0, {1, 2, 3, 4, 5, 6})}
    ahead, _ = admissions.of({("ledger.events", 0): Seen(4, set())})
    assert [e.position for e in ahead] == [5, 6]


@pytest.mark.parametrize("missing", ["ledger_position", "ledger_relayed_through"])
def test_a_record_without_its_relay_stamp_is_malformed(
    template: list[Record], missing: str
) -> None:
    (record,) = stamped(template[:1], [(1, 0)])
    without = record._replace(headers=[(k, v) for k, v in record.headers if k != missing])
    with pytest.raises(MalformedEventError, match=f"no {missing} header"):
        read_event(without)


def test_encoded_headers_read_into_the_same_event(template: list[Record]) -> None:
    """The worker's consumer keeps headers encoded (`kafka_records.EncodedHeaders`)."""
    from ledger import kafka_records

    records = stamped(template, [(n + 1, 0) for n in range(len(template))])
    batch = kafka_records.build_batch([(r.key, r.value, r.headers) for r in records], 0)
    assert kafka_records.install()
    with kafka_records.encoded_headers():
        read = list(kafka_records.DefaultRecordBatch(batch))
    encoded = [r._replace(headers=k.headers) for r, k in zip(records, read, strict=True)]
    assert all(isinstance(r.headers, kafka_records.EncodedHeaders) for r in encoded)
    assert [read_event(r) for r in encoded] == [read_event(r) for r in records]
    assert encoded[0].header("ce_type") == records[0].header("ce_type")
