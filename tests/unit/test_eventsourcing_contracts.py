"""eventsourcing's own transcoder test cases, run against `FastJSONTranscoder`.

`FastJSONTranscoder` overrides the library's encoding (orjson instead of the standard module),
so it is held to the library's own contract. Six of the library's cases expect a transcoder
that keeps tuples and subclasses of dict, list, str and int; the library's `JSONTranscoder`
does not (JSON has no such types: it writes the base type), and neither does ours. Those six
are replaced here by what both really promise: the very bytes the library's `JSONTranscoder`
writes, read back as the base type with equal contents. Skipping them instead would leave the
behaviour unchecked.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoder, UUIDAsHex
from eventsourcing.tests import persistence as contract

from ledger.transcoder import FastJSONTranscoder


def _registered(transcoder: JSONTranscoder) -> JSONTranscoder:
    transcoder.register(contract.CustomType1AsDict())
    transcoder.register(contract.CustomType2AsDict())
    transcoder.register(UUIDAsHex())
    return transcoder


class TestFastJSONTranscoder(contract.TranscoderTestCase):
    def construct_transcoder(self) -> Transcoder:
        return _registered(FastJSONTranscoder())

    def _written_as_the_library_writes(self, obj: Any, base: Any) -> None:
        data = self.transcoder.encode(obj)
        self.assertEqual(data, _registered(JSONTranscoder()).encode(obj))
        copy = self.transcoder.decode(data)
        self.assertIs(type(copy), type(base))
        self.assertEqual(copy, base)

    def test_tuple(self) -> None:
        self._written_as_the_library_writes((), [])
        self._written_as_the_library_writes(((),), [[]])
        self._written_as_the_library_writes(((1, "a"),), [[1, "a"]])

    def test_mixed(self) -> None:
        self._written_as_the_library_writes([(1, "a"), {"b": 2}], [[1, "a"], {"b": 2}])
        self._written_as_the_library_writes(([1, "a"], {"b": 2}), [[1, "a"], {"b": 2}])
        self._written_as_the_library_writes({"a": (1, 2), "b": [3, 4]}, {"a": [1, 2], "b": [3, 4]})

    def test_dict_subclass(self) -> None:
        self._written_as_the_library_writes(contract.Mydict({"a": 1}), {"a": 1})

    def test_list_subclass(self) -> None:
        self._written_as_the_library_writes(contract.MyList((("a", 1),)), [["a", 1]])

    def test_str_subclass(self) -> None:
        self._written_as_the_library_writes(contract.MyStr("a"), "a")

    def test_int_subclass(self) -> None:
        self._written_as_the_library_writes(contract.MyInt(3), 3)
