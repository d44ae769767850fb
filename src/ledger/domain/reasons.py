"""The closed list of reason codes for every "no" the rules give, and for every revocation.

A refusal is an event in the learner's history, and auditors and support staff read its reason
code; a code is never renamed or reused, only added. `docs/rules.md` documents each with its rule.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why the ledger said no (or revoked). The value is what is stored and published."""

    # E1, C3: enrolling.
    SPECIALIZATION_UNKNOWN = "specialization_unknown"
    SPECIALIZATION_RETIRED = "specialization_retired"
    ALREADY_ENROLLED = "already_enrolled"
    # E2: unenrolling or changing intent without an active enrollment in that specialization.
    NOT_ENROLLED = "not_enrolled"
    # P1: a payment that matches no active enrollment's course, or not its pinned price.
    NO_ACTIVE_ENROLLMENT = "no_active_enrollment"
    WRONG_AMOUNT = "wrong_amount"
    # P2: a second, different payment for a course already paid.
    COURSE_ALREADY_PAID = "course_already_paid"
    # P4: refund requests.
    PAYMENT_UNKNOWN = "payment_unknown"
    ALREADY_REFUNDED = "already_refunded"
    PAYMENT_CHARGED_BACK = "payment_charged_back"
    PAYMENT_NOT_COUNTED = "payment_not_counted"
    REFUND_WINDOW_CLOSED = "refund_window_closed"
    COURSE_CERTIFIED = "course_certified"
    # I1: a verification whose expiry is not after its own time.
    INVALID_EXPIRY = "invalid_expiry"
    # K2: capstone grades.
    CAPSTONE_NOT_ENROLLED = "capstone_not_enrolled"
    CAPSTONE_COURSES_NOT_CERTIFIED = "capstone_courses_not_certified"
    # K5: trust & safety revocation requests.
    CERTIFICATE_UNKNOWN = "certificate_unknown"
    CERTIFICATE_ALREADY_REVOKED = "certificate_already_revoked"
    # K5, P5: why a certificate was revoked by the ledger itself.
    COURSE_CERTIFICATE_REVOKED = "course_certificate_revoked"
    #: I1, K1, K3: a late revocation ended the verification a certificate rested on before the
    #: moment the certificate was earned.
    IDENTITY_REVOKED = "identity_revoked"
    TRUST_AND_SAFETY = "trust_and_safety"
