"""What the ledger can store and judge, checked at the edge so no value can stop a worker.

PostgreSQL refuses text holding a NUL character (and psycopg cannot send a lone UTF-16
surrogate), and a time outside the ledger's span (`ledger.domain.timeline`) overflows Python or
a time zone. A message carrying either would crash whatever first stores or shows it, again on
every retry, and stop its partition. So every text and time of every inbound model goes through
the types here: a bad value is a `schema_violation` naming its field path, decided once, at
intake, like any other invalid message.

Times must be RFC 3339 text (CloudEvents' `time`), never a number: pydantic would otherwise read
`1700000000` as seconds since 1970.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

from ledger.domain.timeline import EARLIEST, LATEST, within

#: RFC 3339 `date-time`: full date, `T` (or a space, as RFC 3339 allows), time, offset or `Z`.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)


def storable(text: str) -> str:
    """`text` unchanged if PostgreSQL can store it; otherwise a ValueError saying why."""
    if "\x00" in text:
        raise ValueError(
            "contains a NUL character (\\u0000), which the ledger cannot store: remove it"
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "contains a lone UTF-16 surrogate, which is not text: send valid UTF-8"
            ) from None
    return text


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value  # built in Python (tests, tools); the after-check still applies
    if not isinstance(value, str):
        raise ValueError(  # noqa: TRY004 - pydantic reports ValueError as the field's error
            f"must be an RFC 3339 date-time string such as 2026-01-31T09:00:00Z, "
            f"not {type(value).__name__}"
        )
    if not _RFC3339.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 date-time with a time zone, such as 2026-01-31T09:00:00Z"
        )
    return value


def _in_span(moment: datetime) -> datetime:
    if not within(moment):
        raise ValueError(
            f"is outside the times the ledger can record ({EARLIEST.isoformat()} to "
            f"{LATEST.isoformat()} UTC)"
        )
    return moment


#: Text any inbound field may hold: no NUL, no lone surrogate (JSON Schema: the pattern).
Text = Annotated[
    str,
    AfterValidator(storable),
    Field(json_schema_extra={"pattern": "^[^\\u0000]*$"}),
]

#: A business time: RFC 3339 text with an offset, inside the ledger's span.
BusinessTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_span)]
