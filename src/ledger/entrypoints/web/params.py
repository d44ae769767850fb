"""The values a route takes from its path or query, checked before anything is looked up: text
PostgreSQL can hold (no NUL, no lone surrogate: either would come back as a 500), of a sane
length, and times inside the span the ledger records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import HTTPException, Path, Query
from pydantic import AfterValidator

from commands.limits import storable
from ledger.domain.timeline import parse_moment

#: An id in a path or query: text the read models can hold, of a sane length. A NUL or a
#: surrogate would otherwise reach PostgreSQL and come back as a 500.
Id = Annotated[str, AfterValidator(storable)]
LearnerId = Annotated[Id, Path(min_length=1, max_length=200, description="The learner's id.")]
SpecializationId = Annotated[
    Id, Path(min_length=1, max_length=200, description="The specialization's id.")
]


AsOf = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Only what was recorded by then (ISO 8601; UTC if no zone), and the state "
        "the ledger derived from it.",
    ),
]


def moment_of(as_of: str | None) -> datetime | None:
    """`as_of` as a time, or a 422 saying what is wrong with it."""
    if as_of is None:
        return None
    try:
        return parse_moment(as_of)
    except ValueError as error:
        raise HTTPException(status_code=422, detail=f"as_of: {error}") from None
