"""A faster reader of Kafka's record format (v2) for kafka-python's consumer.

Why: the projection worker reads every record of `ledger.events`, and each carries the nine
headers of a binary-mode CloudEvent. kafka-python reads a record with one Python call per
varint (about 25 per record), so reading records was the largest single cost of a projection
worker (`ledger bench projections`). `read_record` reads the same layout with the common case,
a varint of one byte, inline; in a micro-benchmark on this project's records it took about
0.7 times kafka-python's time per record.

How: `install()` puts `read_record` in place of `DefaultRecordBatch._read_msg`, the method
kafka-python's fetcher calls for each record of a batch; everything around it (fetching, CRC
checks, control batches, transactions, decompression) stays kafka-python's own. Before it does,
it reads sample batches built by kafka-python's own builder (keys and values present and null,
long values, many headers, null header values, non-ASCII keys, large timestamp deltas) with
both readers and installs only if every record comes out identical. So a kafka-python release
that changes the method's contract leaves kafka-python as it is, and says so in the log.

Header names: kafka-python decodes them as strict UTF-8, so one producer's record with a name
that is not UTF-8 made every poll of its partition raise, for ever. `read_record` decodes them
with `surrogateescape`: such a name arrives as text with its bytes recoverable, and the record
is judged like any other (a rejection keeps the name's original bytes, `ledger.store`).

Encoded headers: inside `encoded_headers()` (the projection worker's polls, see
`broker.Consumer`), `read_record` does not read the headers at all; it keeps their bytes in an
`EncodedHeaders`, which the caller reads with `by_name()` in one pass. Reading headers into
pairs, kafka-python then measuring every pair (for a `serialized_header_size` nobody reads), and
the worker then building a dict of them cost about a fifth of the worker's time with production-
like traffic; this costs a third of that. The price is a trick: an `EncodedHeaders` is an empty
list to anything that does not know it, kafka-python included (which is why it skips measuring),
so it is made only for the thread inside `encoded_headers()`, whose caller knows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kafka.errors import CorruptRecordError
from kafka.record.default_records import (
    ControlRecord,
    DefaultRecord,
    DefaultRecordBatch,
    DefaultRecordBatchBuilder,
)
from kafka.record.util import decode_varint

from ledger.logs import get_logger

log = get_logger(__name__)

_ORIGINAL = DefaultRecordBatch._read_msg


class _Mode(threading.local):
    encoded = False


_MODE = _Mode()


class CorruptHeadersError(CorruptRecordError, ValueError):  # type: ignore[misc]
    """An `EncodedHeaders` block that does not hold the headers it says it does."""


class EncodedHeaders(list[tuple[str, bytes | None]]):
    """A record's headers as they are in the record, read when asked (see the module docstring).

    As a list it is empty: use `pairs()` or `by_name()`.
    """

    __slots__ = ("block", "headers")

    def __init__(self, block: bytes, headers: int) -> None:
        super().__init__()
        self.block = block
        #: How many headers the block holds.
        self.headers = headers

    def by_name(self) -> dict[bytes, bytes | None]:
        """Each header's value by its name, as bytes (the last one, for a repeated name)."""
        buf = self.block
        pos = 0
        out: dict[bytes, bytes | None] = {}
        try:
            for _ in range(self.headers):
                b = buf[pos]
                if b < 0x80:
                    size, pos = (b >> 1) ^ -(b & 1), pos + 1
                else:
                    size, pos = decode_varint(buf, pos)
                if size < 0:
                    raise CorruptHeadersError(f"Invalid negative header key size {size}")
                name, pos = buf[pos : pos + size], pos + size
                b = buf[pos]
                if b < 0x80:
                    size, pos = (b >> 1) ^ -(b & 1), pos + 1
                else:
                    size, pos = decode_varint(buf, pos)
                if size >= 0:
                    out[name] = buf[pos : pos + size]
                    pos += size
                else:
                    out[name] = None
        except IndexError as error:
            raise CorruptHeadersError("record headers run past the end of the record") from error
        if pos != len(buf):
            raise CorruptHeadersError(
                f"Invalid record size: {len(buf) - pos} bytes left after {self.headers} headers"
            )
        return out

    def pairs(self) -> list[tuple[str, bytes | None]]:
        """The headers as kafka-python gives them: (name, value) pairs, in order."""
        block = self.block
        pairs: list[tuple[str, bytes | None]] = []
        pos = 0
        for _ in range(self.headers):
            size, pos = decode_varint(block, pos)
            if size < 0:
                raise CorruptHeadersError(f"Invalid negative header key size {size}")
            name, pos = block[pos : pos + size].decode("utf-8", "surrogateescape"), pos + size
            size, pos = decode_varint(block, pos)
            if size >= 0:
                pairs.append((name, block[pos : pos + size]))
                pos += size
            else:
                pairs.append((name, None))
        if pos != len(block):
            raise CorruptHeadersError(f"{len(block) - pos} bytes left after {self.headers} headers")
        return pairs


@contextmanager
def encoded_headers() -> Iterator[None]:
    """Records this thread reads meanwhile keep their headers encoded (`EncodedHeaders`)."""
    before = _MODE.encoded
    _MODE.encoded = True
    try:
        yield
    finally:
        _MODE.encoded = before


def read_record(batch: Any) -> DefaultRecord:  # noqa: PLR0912, PLR0915 - inline on purpose
    """The record at the batch's read position, which moves past it: `_read_msg`'s contract.

    A varint below 0x80 is one byte holding a zigzag-encoded value, `(b >> 1) ^ -(b & 1)`;
    anything longer goes to kafka-python's `decode_varint`.
    """
    buf = batch._buffer
    if type(buf) is not bytes:
        # Slices of bytes are bytes; slices of kafka-python's bytearray had to be copied again.
        buf = batch._buffer = bytes(buf)
    pos = batch._pos
    b = buf[pos]
    if b < 0x80:
        length, pos = (b >> 1) ^ -(b & 1), pos + 1
    else:
        length, pos = decode_varint(buf, pos)
    start = pos
    if buf[pos] < 0x80:  # attributes: unused by this format version
        pos += 1
    else:
        _, pos = decode_varint(buf, pos)
    timestamp_delta, pos = decode_varint(buf, pos)
    b = buf[pos]
    if b < 0x80:
        offset_delta, pos = (b >> 1) ^ -(b & 1), pos + 1
    else:
        offset_delta, pos = decode_varint(buf, pos)
    b = buf[pos]
    if b < 0x80:
        size, pos = (b >> 1) ^ -(b & 1), pos + 1
    else:
        size, pos = decode_varint(buf, pos)
    key = None
    if size >= 0:
        key, pos = buf[pos : pos + size], pos + size
    b = buf[pos]
    if b < 0x80:
        size, pos = (b >> 1) ^ -(b & 1), pos + 1
    else:
        size, pos = decode_varint(buf, pos)
    value = None
    if size >= 0:
        value, pos = buf[pos : pos + size], pos + size
    b = buf[pos]
    if b < 0x80:
        count, pos = (b >> 1) ^ -(b & 1), pos + 1
    else:
        count, pos = decode_varint(buf, pos)
    if count < 0:
        raise CorruptRecordError(f"Found invalid number of record headers {count}")
    headers: list[tuple[str, bytes | None]]
    if _MODE.encoded:
        end = start + length
        if end > len(buf):
            raise CorruptRecordError("record runs past the end of its batch")
        headers, pos = EncodedHeaders(buf[pos:end], count), end
        count = 0  # read later, by the caller
    else:
        headers = []
    for _ in range(count):
        b = buf[pos]
        if b < 0x80:
            size, pos = (b >> 1) ^ -(b & 1), pos + 1
        else:
            size, pos = decode_varint(buf, pos)
        if size < 0:
            raise CorruptRecordError(f"Invalid negative header key size {size}")
        name, pos = buf[pos : pos + size].decode("utf-8", "surrogateescape"), pos + size
        b = buf[pos]
        if b < 0x80:
            size, pos = (b >> 1) ^ -(b & 1), pos + 1
        else:
            size, pos = decode_varint(buf, pos)
        if size >= 0:
            headers.append((name, buf[pos : pos + size]))
            pos += size
        else:
            headers.append((name, None))
    if pos - start != length:
        raise CorruptRecordError(
            f"Invalid record size: expected to read {length} bytes in record payload, "
            f"but instead read {pos - start}"
        )
    batch._pos = pos
    timestamp_type = batch.timestamp_type
    if timestamp_type == batch.LOG_APPEND_TIME:
        timestamp = batch.max_timestamp
    else:
        timestamp = batch.first_timestamp + timestamp_delta
    kind = ControlRecord if batch.is_control_batch else DefaultRecord
    return kind(
        length, batch.base_offset + offset_delta, timestamp, timestamp_type, key, value, headers
    )


Shape = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]


def build_batch(shapes: list[Shape], base_timestamp: int) -> bytes:
    """A record batch built by kafka-python itself: (key, value, headers) per record, with
    timestamps spread widely from `base_timestamp` (milliseconds)."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 24,
    )
    for offset, (key, value, headers) in enumerate(shapes):
        timestamp = base_timestamp + offset * 100_000_007
        builder.append(offset, timestamp=timestamp, key=key, value=value, headers=headers)
    return bytes(builder.build())


def read_all(buffer: bytes) -> list[tuple[Any, ...]]:
    """Every record of a batch, each as a tuple of all it holds (encoded headers read): for
    comparing two readers."""
    return [
        (
            type(r),
            r.size_in_bytes,
            r.offset,
            r.timestamp,
            r.timestamp_type,
            r.key,
            r.value,
            r.headers.pairs() if isinstance(r.headers, EncodedHeaders) else r.headers,
        )
        for r in DefaultRecordBatch(buffer)
    ]


def _sample_batches() -> list[bytes]:
    """Batches covering the shapes records can take."""
    shapes: list[Shape] = [
        (b"learner-1", b'{"a": 1}', [("ce_id", b"x:1"), ("ce_type", b"t.v1")]),
        (None, b"v", []),
        (b"k", None, [("empty", b""), ("none", None)]),
        (b"k" * 300, b"v" * 70_000, [("h\u00e9ader", b"\x00" * 200)]),
        (b"", b"", [(f"h{n}", bytes([n])) for n in range(70)]),
    ]
    return [build_batch(shapes * 4, base) for base in (1_700_000_000_000, 0)]


def install() -> bool:
    """Use `read_record` in kafka-python's consumer if it reads the samples exactly as
    kafka-python does; return whether it is in use. Idempotent."""
    if DefaultRecordBatch._read_msg is read_record:
        return True
    try:
        batches = _sample_batches()
        expected = [read_all(b) for b in batches]
        DefaultRecordBatch._read_msg = read_record
        same = [read_all(b) for b in batches] == expected
        with encoded_headers():
            same = same and [read_all(b) for b in batches] == expected
    except Exception as error:  # noqa: BLE001 - any surprise means: keep kafka-python's reader
        same = False
        log.warning("kafka_records.not_installed", reason=repr(error))
    if not same:
        DefaultRecordBatch._read_msg = _ORIGINAL
        log.warning("kafka_records.not_installed", reason="reads the samples differently")
    return same


@contextmanager
def stock_reader() -> Iterator[None]:
    """kafka-python's own reader for a while: what benchmarks compare the ledger with."""
    installed = DefaultRecordBatch._read_msg is read_record
    DefaultRecordBatch._read_msg = _ORIGINAL
    try:
        yield
    finally:
        if installed:
            DefaultRecordBatch._read_msg = read_record
