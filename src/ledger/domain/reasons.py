"""The closed list of reason codes for every "no" the rules give.

A refusal is an event in the learner's history, and auditors and support staff read its reason
code; a code is never renamed or reused, only added. `docs/rules.md` documents each.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why the ledger said no. The value is what is stored and published."""

    #: E1: enrolling in a specialization that was never published.
    SPECIALIZATION_UNKNOWN = "specialization_unknown"
    #: E1/C3: enrolling in a retired specialization.
    SPECIALIZATION_RETIRED = "specialization_retired"
    #: E1: enrolling while already actively enrolled in the same specialization.
    ALREADY_ENROLLED = "already_enrolled"
    #: E2: unenrolling or changing intent without an active enrollment in that specialization.
    NOT_ENROLLED = "not_enrolled"
