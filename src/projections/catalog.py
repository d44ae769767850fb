"""Every read model the projection worker keeps, in the order it applies them."""

from __future__ import annotations

from projections.model import ReadModel
from projections.read_models import (
    certificates,
    credentials,
    learner_progress,
    payments,
    retention,
)

READ_MODELS: tuple[ReadModel, ...] = (
    learner_progress.MODEL,
    certificates.MODEL,
    payments.MODEL,
    retention.MODEL,
    credentials.MODEL,
)


def by_name(name: str) -> ReadModel:
    """The read model called `name`; the error lists the names there are."""
    for model in READ_MODELS:
        if model.name == name:
            return model
    known = ", ".join(m.name for m in READ_MODELS)
    raise KeyError(f"no read model called {name!r}; there are: {known}")
