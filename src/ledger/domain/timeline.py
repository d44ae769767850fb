"""The span of business time the ledger can judge, and date arithmetic that stays inside it.

Python's `datetime` ends at year 9999 and PostgreSQL shows a `timestamptz` in the session's time
zone, so a moment close to either end of years 1 to 9999 (UTC) can overflow when it is shifted
into a zone or a rule adds a period to it (I1's year of validity, P4's refund window). The edge
refuses times outside `EARLIEST`..`LATEST` (a day inside each end, so any time zone can show
them); inside the rules, `days_after` saturates at `LATEST` instead of overflowing, so a
verification given at the end of time is simply valid until then.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: The earliest business time any message may carry (a day after the start of year 1, UTC).
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
#: The latest business time any message may carry, and where `days_after` stops.
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)


def within(moment: datetime) -> bool:
    """Whether `moment` (timezone-aware) lies in the span the ledger can judge."""
    return EARLIEST <= moment <= LATEST


def days_after(moment: datetime, days: int) -> datetime:
    """`moment` plus `days`, or `LATEST` if that lies beyond it (never an OverflowError)."""
    if moment >= LATEST - timedelta(days=days):
        return LATEST
    return moment + timedelta(days=days)


def parse_moment(text: str) -> datetime:
    """An ISO 8601 time as given by a person (UTC if it names no zone), inside the span;
    `ValueError` saying what is wrong otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-03-01T12:00:00+00:00)"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not within(moment):
        raise ValueError(
            f"{text!r} is outside the times the ledger records "
            f"({EARLIEST.isoformat()} to {LATEST.isoformat()})"
        )
    return moment
