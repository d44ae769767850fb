"""What a learner holds, as values: enrollments with their pinned curriculum, course results,
payments, identity verifications and certificates, and what the rules say is due.

The `Learner` aggregate (`ledger.domain.learner`) keeps these and decides with them; here they
are only data and the small questions about themselves each can answer (is an enrollment
active, is a verification valid at a moment), so the aggregate's module reads as the rules.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import uuid4

from ledger.domain.specialization import Curriculum

#: I1: how long a verification is valid when the identity service names no expiry.
DEFAULT_VERIFICATION_DAYS = 365


#: K4: bytes of randomness in a verification code (120 bits; at least 80 are required).
VERIFICATION_CODE_BYTES = 15


class Intent(StrEnum):
    """What the learner said they want from an enrollment (E1)."""

    CERTIFICATE = "certificate"
    AUDIT = "audit"


class PaymentState(StrEnum):
    """Where a payment stands (P1 to P5)."""

    COUNTED = "counted"
    TO_BE_RETURNED = "to_be_returned"
    REFUNDED = "refunded"
    CHARGED_BACK = "charged_back"


@dataclass
class Enrollment:
    """The learner's enrollment in one specialization, with the curriculum it pinned (E1, E2)."""

    enrollment_id: str
    specialization_id: str
    curriculum: Curriculum
    intent: Intent
    enrolled_at: datetime
    ended_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.ended_at is None

    @property
    def required_courses(self) -> tuple[str, ...]:
        """Every course a specialization certificate needs: the pinned courses and the capstone."""
        return (*self.curriculum.courses, self.curriculum.capstone_course_id)


@dataclass
class CourseResult:
    """The grades the grading service sent for one course."""

    course_id: str
    latest_grade: Decimal
    latest_passed: bool
    graded_at: datetime
    #: The earliest passing grade in business time (K1 counts from it), as (time, event id).
    first_pass: tuple[datetime, str] | None = None


@dataclass
class Payment:
    """A captured payment and what became of it."""

    payment_id: str
    course_id: str
    amount: Decimal
    currency: str
    paid_at: datetime
    event_id: str
    state: PaymentState
    refund_window_days: int
    reason: str | None = None


@dataclass
class Verification:
    """One identity verification: valid on [verified_at, min(expires_at, revoked_at)) (I1)."""

    event_id: str
    method: str
    verified_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    @property
    def ends_at(self) -> datetime:
        return self.expires_at if self.revoked_at is None else min(self.expires_at, self.revoked_at)

    def valid_at(self, moment: datetime) -> bool:
        return self.verified_at <= moment < self.ends_at


@dataclass
class Certificate:
    """A course or specialization certificate (K1, K3), live until revoked (K5, K6)."""

    certificate_id: str
    kind: str  # "course" or "specialization"
    subject: str  # the course id, or the specialization id
    verification_code: str
    earned_at: datetime
    event_id: str
    evidence: tuple[str, ...]
    curriculum_version: int | None = None
    enrollment_id: str | None = None
    payment_id: str | None = None
    course_certificate_ids: tuple[str, ...] = ()
    curricula: tuple[str, ...] = ()
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    revoked_by_trust_and_safety: bool = False

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Due:
    """A certificate the rules say is due: when it was earned and what it rests on."""

    earned_at: datetime
    evidence: tuple[str, ...]
    payment_id: str | None = None


def new_verification_code() -> str:
    """K4: unique and unguessable: 120 random bits, URL-safe, decided once and stored."""
    return secrets.token_urlsafe(VERIFICATION_CODE_BYTES)


def new_certificate_id() -> str:
    return str(uuid4())
