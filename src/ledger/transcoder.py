"""The event store's transcoder: eventsourcing's JSON format, written by orjson.

Encoding every event's state was the largest single cost of the intake (the standard library's
encoder calls back into Python for every datetime and decimal). `FastJSONTranscoder` writes the
very same bytes as eventsourcing's `JSONTranscoder` (compact separators, UTF-8 unescaped, custom
types as `{"_type_": name, "_data_": value}`), so stores written by either read with either;
`tests/unit/test_fast_encodings.py` holds it to that for every event the scenarios produce.
Decoding is the library's own: it needs an object hook, which orjson lacks, and it only runs
when an aggregate is loaded from the store, not on the hot path.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

# Datetimes and dataclasses are passed to `default` (orjson would otherwise write them its own
# way). UUIDs have no pass-through option and would be written as plain strings: no event field
# may be a UUID, which the transcoder test checks over every event class of the domain.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONTranscoder(JSONTranscoder):
    """`JSONTranscoder`'s format and registered transcodings, encoded by orjson."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._encode_obj, option=_OPTIONS)
