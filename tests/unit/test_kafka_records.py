"""`ledger.kafka_records` reads every record exactly as kafka-python's own reader does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch

from ledger import kafka_records
from ledger.application import Ledger
from ledger.kafka_records import Shape

from .. import read_scenario


def _batch(shapes: list[Shape], base_timestamp: int = 1_767_225_600_000) -> bytes:
    return kafka_records.build_batch(shapes, base_timestamp)


_read = kafka_records.read_all


def _both(buffer: bytes) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """kafka-python's reading, and ours (once with headers read, once with them kept encoded
    and read afterwards, which must agree)."""
    with kafka_records.stock_reader():
        assert DefaultRecordBatch._read_msg is not kafka_records.read_record
        stock = _read(buffer)
    kafka_records.install()
    assert DefaultRecordBatch._read_msg is kafka_records.read_record
    fast = _read(buffer)
    with kafka_records.encoded_headers():
        assert _read(buffer) == fast
    return stock, fast


@pytest.fixture
def scenario_shapes() -> Iterator[list[Shape]]:
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        read_scenario.build(ledger)
        yield [(r.key, r.value, list(r.headers)) for r in read_scenario.records(ledger)]
    finally:
        ledger.close()


def test_the_ledgers_own_records_read_the_same(scenario_shapes: list[Shape]) -> None:
    assert len(scenario_shapes) >= 40
    assert all(len(headers) >= 9 for _, _, headers in scenario_shapes)
    stock, fast = _both(_batch(scenario_shapes))
    assert fast == stock


_names = st.text(max_size=80)
_bytes = st.none() | st.binary(max_size=300)
_shapes = st.lists(
    st.tuples(_bytes, _bytes, st.lists(st.tuples(_names, _bytes), max_size=80)),
    min_size=1,
    max_size=20,
)


@given(_shapes, st.integers(min_value=0, max_value=2**41))
def test_any_record_reads_the_same(shapes: list[Shape], base_timestamp: int) -> None:
    stock, fast = _both(_batch(shapes, base_timestamp))
    assert fast == stock


def test_a_corrupt_record_is_refused_as_kafka_python_refuses_it(
    scenario_shapes: list[Shape],
) -> None:
    buffer = bytearray(_batch(scenario_shapes[:3]))
    buffer[-1] ^= 0x7F  # the last header value's last byte becomes a different length
    buffer[61] = 0x7E  # the first record's length (after the 61-byte batch header) is wrong
    errors = []
    for reader in ("stock", "fast"):
        with kafka_records.stock_reader():
            if reader == "fast":
                DefaultRecordBatch._read_msg = kafka_records.read_record
            with pytest.raises(Exception) as raised:
                _read(bytes(buffer))
            errors.append(type(raised.value))
    assert errors[0] is errors[1]


def test_encoded_headers_are_read_by_name_and_only_inside_the_mode(
    scenario_shapes: list[Shape],
) -> None:
    kafka_records.install()
    buffer = _batch(scenario_shapes[:5])
    with kafka_records.encoded_headers():
        records = list(DefaultRecordBatch(buffer))
    for record, (_, _, headers) in zip(records, scenario_shapes[:5], strict=True):
        encoded = record.headers
        assert isinstance(encoded, kafka_records.EncodedHeaders)
        assert list(encoded) == []  # what kafka-python sees: nothing to measure
        assert encoded.by_name() == {k.encode(): v for k, v in headers}
    assert all(type(r.headers) is list for r in DefaultRecordBatch(buffer))


def test_a_corrupt_encoded_header_block_is_refused(scenario_shapes: list[Shape]) -> None:
    kafka_records.install()
    with kafka_records.encoded_headers():
        (record,) = DefaultRecordBatch(_batch(scenario_shapes[:1]))
    block = record.headers.block
    for damaged in (block[:-3], block + b"\x00", b"\x01" + block[1:]):
        with pytest.raises(CorruptRecordError):
            kafka_records.EncodedHeaders(damaged, record.headers.headers).by_name()


def test_a_reader_that_disagrees_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(batch: Any) -> Any:
        record = kafka_records.read_record(batch)
        record._headers = record._headers[:-1]  # loses a header
        return record

    # Both through monkeypatch, so that whatever reader was in place comes back after.
    monkeypatch.setattr(DefaultRecordBatch, "_read_msg", kafka_records._ORIGINAL)
    monkeypatch.setattr(kafka_records, "read_record", wrong)
    assert kafka_records.install() is False
    assert DefaultRecordBatch._read_msg is kafka_records._ORIGINAL
