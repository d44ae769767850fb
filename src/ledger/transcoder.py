"""The event store's transcoder: eventsourcing's JSON format, written by orjson.

Encoding every event's state was the largest single cost of the intake (the standard library's
encoder calls back into Python for every datetime and decimal). `FastJSONTranscoder` writes the
very same bytes as eventsourcing's `JSONTranscoder` (compact separators, UTF-8 unescaped, custom
types as `{"_type_": name, "_data_": value}`), so stores written by either read with either;
`tests/unit/test_fast_encodings.py` holds it to that for every event the scenarios produce.
Decoding is the library's own: it needs an object hook, which orjson lacks, and it only runs
when an aggregate is loaded from the store, not on the hot path.

Two things orjson would do differently are put right, so that the library's own transcoder test
cases (`eventsourcing.tests.persistence.TranscoderTestCase`, run against this class in
`tests/unit/test_eventsourcing_contracts.py`) hold: a UUID inside what a custom transcoding
returns is itself transcoded (orjson writes UUIDs as plain text, with no way to hand them to
`default`), and an unregistered type raises the library's own `TranscodingNotRegisteredError`
(orjson wraps it in a message of its own).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

# Datetimes and dataclasses are passed to `default` (orjson would otherwise write them its own
# way). UUIDs have no pass-through option and would be written as plain strings: no event field
# may be a UUID, which the transcoder test checks over every event class of the domain.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONTranscoder(JSONTranscoder):
    """`JSONTranscoder`'s format and registered transcodings, encoded by orjson."""

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self._default, option=_OPTIONS)
        except orjson.JSONEncodeError as error:
            if isinstance(error.__cause__, TranscodingNotRegisteredError):
                raise error.__cause__ from None
            raise

    def _default(self, obj: Any) -> dict[str, Any]:
        encoded = self._encode_obj(obj)
        encoded["_data_"] = self._uuids_transcoded(encoded["_data_"])
        return encoded

    def _uuids_transcoded(self, data: Any) -> Any:
        """What a custom transcoding returned, with the UUIDs in it transcoded too."""
        if isinstance(data, UUID):
            return self._encode_obj(data)
        if isinstance(data, dict):
            return {k: self._uuids_transcoded(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self._uuids_transcoded(v) for v in data]
        return data
