"""Deterministic aggregate ids from natural keys.

Publishers name learners and specializations by their own ids; the ledger derives its aggregate
ids from those with uuid5, so a redelivered message finds the same aggregate without a lookup table
and two workers can never create two aggregates for one learner.
"""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

#: Fixed forever: changing it would orphan every stored stream.
LEDGER_NAMESPACE = UUID("6f1c2a0e-4b7d-5e8a-9c3f-2d1b0a9e8f7c")


@lru_cache(maxsize=65_536)  # called for every message; uuid5 hashes each time
def learner_aggregate_id(learner_id: str) -> UUID:
    """The id of the `Learner` aggregate that holds everything about `learner_id`."""
    return uuid5(LEDGER_NAMESPACE, f"learner:{learner_id}")


@lru_cache(maxsize=4_096)
def specialization_aggregate_id(specialization_id: str) -> UUID:
    """The id of the `Specialization` aggregate for catalog id `specialization_id`."""
    return uuid5(LEDGER_NAMESPACE, f"specialization:{specialization_id}")
