"""Reading an Open edX event bus value: Avro, as `openedx-events` defines each event type's
schema, usually framed as Confluent's schema registry frames it (a zero byte, the 4-byte schema
id, then the Avro body).

The reader's schema is always the one the installed `openedx-events` gives the event type (the
optional extra `enrollment-ledger[openedx]`); when a schema registry is configured
(`LEDGER_OPENEDX_SCHEMA_REGISTRY`), the writer's schema is fetched from it by id and the two are
resolved as Avro resolves them, so an event written with an older or newer schema still reads.
Without a registry the writer is taken to have used the installed schema. What is not such a
value says so: `not_avro`, with what failed.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from ledger.errors import ConfigurationError

#: Confluent's wire format: this byte, then the schema id (4 bytes, big-endian), then Avro.
MAGIC = b"\x00"


class Untranslatable(Exception):  # noqa: N818 - a verdict on a message, kept as its rejection
    """Raised when a message cannot become a ledger message: `reason` is the rejection's code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _openedx() -> Any:
    try:
        import openedx_events.learning.signals  # noqa: F401, PLC0415 - registers the types
        from openedx_events.tooling import OpenEdxPublicSignal  # noqa: PLC0415
    except ImportError:
        raise ConfigurationError(
            "the Open edX bridge needs the openedx-events package: "
            "pip install 'enrollment-ledger[openedx]'"
        ) from None
    return OpenEdxPublicSignal


class Schemas:
    """Each event type's reader schema, and writer schemas by registry id, each parsed once."""

    def __init__(self, registry_url: str | None = None) -> None:
        self.signal = _openedx()
        self.registry_url = registry_url.rstrip("/") if registry_url else None
        self._readers: dict[str, Any] = {}
        self._writers: dict[int, Any] = {}
        self._lock = threading.Lock()

    def reader(self, event_type: str) -> Any:
        """The parsed schema `openedx-events` gives `event_type`; `Untranslatable` if it gives
        none."""
        with self._lock:
            if event_type not in self._readers:
                import fastavro  # noqa: PLC0415
                from openedx_events.event_bus.avro.serializer import (  # noqa: PLC0415
                    AvroSignalSerializer,
                )

                try:
                    signal = self.signal.get_signal_by_type(event_type)
                except KeyError:
                    raise Untranslatable(
                        "unknown_openedx_type",
                        f"{event_type!r} is no event type the installed openedx-events defines",
                    ) from None
                self._readers[event_type] = fastavro.parse_schema(
                    AvroSignalSerializer(signal).schema
                )
            return self._readers[event_type]

    def writer(self, schema_id: int) -> Any:
        """The registry's schema with this id, parsed."""
        with self._lock:
            if schema_id not in self._writers:
                import fastavro  # noqa: PLC0415
                import httpx  # noqa: PLC0415

                url = f"{self.registry_url}/schemas/ids/{schema_id}"
                try:
                    answer = httpx.get(url, timeout=10)
                except httpx.HTTPError as error:
                    raise ConfigurationError(
                        f"the schema registry at {self.registry_url} did not answer: {error}"
                    ) from error
                if answer.status_code == 404:
                    raise Untranslatable(
                        "unknown_schema", f"the schema registry knows no schema {schema_id}"
                    )
                answer.raise_for_status()
                self._writers[schema_id] = fastavro.parse_schema(
                    json.loads(answer.json()["schema"])
                )
            return self._writers[schema_id]


def decode(value: bytes | None, event_type: str, schemas: Schemas) -> dict[str, Any]:
    """The event's data as plain values (course keys and times as text, as Avro holds them)."""
    import fastavro  # noqa: PLC0415

    if not value:
        raise Untranslatable("not_avro", "the value is empty: an Avro-encoded event is expected")
    reader = schemas.reader(event_type)
    schema_id: int | None = None
    body = value
    if value[:1] == MAGIC and len(value) >= 5:
        schema_id = int.from_bytes(value[1:5], "big")
        body = value[5:]
    writer = reader
    if schema_id is not None and schemas.registry_url:
        writer = schemas.writer(schema_id)
    stream = io.BytesIO(body)
    try:
        data = fastavro.schemaless_reader(stream, writer, reader)
    except Exception as error:  # noqa: BLE001 - fastavro raises many kinds on bad bytes
        raise Untranslatable(
            "not_avro", f"the value is not a {event_type} in Avro: {type(error).__name__}: {error}"
        ) from None
    left = len(body) - stream.tell()
    if left:
        raise Untranslatable(
            "not_avro", f"the value is not a {event_type} in Avro: {left} bytes left over"
        )
    if not isinstance(data, dict):
        raise Untranslatable("not_avro", f"the value is not a {event_type} record")
    return data
