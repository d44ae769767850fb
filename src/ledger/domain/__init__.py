"""The rulebook as event-sourced aggregates: pure Python, no I/O, time passed in.

`Specialization` holds the catalog, `Learner` holds everything about one learner. Both decide in
their public methods and only assign inside their private `@event` methods, so replaying old
history never re-runs a rule.
"""

from ledger.domain.ids import learner_aggregate_id, specialization_aggregate_id
from ledger.domain.learner import Learner
from ledger.domain.learner_state import Enrollment
from ledger.domain.reasons import Reason
from ledger.domain.specialization import Curriculum, Policy, Price, Specialization

__all__ = [
    "Curriculum",
    "Enrollment",
    "Learner",
    "Policy",
    "Price",
    "Reason",
    "Specialization",
    "learner_aggregate_id",
    "specialization_aggregate_id",
]
