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


#: Each reason as support staff read it out: what the console and `learner show` say beside the
#: code (the code stays the stable, searchable part).
WORDS: dict[Reason, str] = {
    Reason.SPECIALIZATION_UNKNOWN: "the specialization was never published",
    Reason.SPECIALIZATION_RETIRED: "the specialization is retired and takes no new enrollments",
    Reason.ALREADY_ENROLLED: "already enrolled in this specialization",
    Reason.NOT_ENROLLED: "not enrolled in this specialization",
    Reason.NO_ACTIVE_ENROLLMENT: "the course is in none of the learner's active enrollments",
    Reason.WRONG_AMOUNT: "the amount or currency is not the enrollment's price",
    Reason.COURSE_ALREADY_PAID: "the course was paid already: this payment is to be returned",
    Reason.PAYMENT_UNKNOWN: "no such payment was recorded",
    Reason.ALREADY_REFUNDED: "the payment was refunded already",
    Reason.PAYMENT_CHARGED_BACK: "the payment was charged back",
    Reason.PAYMENT_NOT_COUNTED: "the payment never counted for its course",
    Reason.REFUND_WINDOW_CLOSED: "the refund window had closed",
    Reason.COURSE_CERTIFIED: "a course certificate was earned on this payment",
    Reason.INVALID_EXPIRY: "the verification expires before it starts",
    Reason.CAPSTONE_NOT_ENROLLED: "no active enrollment has this capstone",
    Reason.CAPSTONE_COURSES_NOT_CERTIFIED: "the capstone needs every course certified first",
    Reason.CERTIFICATE_UNKNOWN: "no such certificate",
    Reason.CERTIFICATE_ALREADY_REVOKED: "the certificate was revoked already",
    Reason.COURSE_CERTIFICATE_REVOKED: "a course certificate it rested on was revoked",
    Reason.IDENTITY_REVOKED: "the identity verification it rested on was revoked",
    Reason.TRUST_AND_SAFETY: "revoked by trust & safety",
}


def in_words(code: str) -> str:
    """A reason code in words; a code this release does not know (from a newer writer) as it
    is."""
    try:
        return WORDS[Reason(code)]
    except ValueError:
        return code.replace("_", " ")
