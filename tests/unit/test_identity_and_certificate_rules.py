"""I1 and K1-K6: identity validity, course and specialization certificates, revocation."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from decimal import Decimal

import pytest

from ledger.domain import Learner, Policy, Reason
from ledger.domain.learner_state import Intent

from .helpers import (
    DAY,
    PRICE,
    T0,
    catalog,
    certify,
    course_certificates,
    enrolled,
    events_of,
    specialization_certificates,
)

SMALL = ("a", "b", "c")


def small_enrolled(policy: Policy | None = None) -> Learner:
    return enrolled(catalog(courses=SMALL, capstone="cap", policy=policy))


def test_I1_a_verification_is_valid_from_its_time_until_its_expiry_instant() -> None:
    learner = Learner.register("ada", T0)
    expires = T0 + 10 * DAY
    learner.verify_identity("id", expires, T0)
    assert not learner.identity_valid_at(T0 - timedelta(microseconds=1))
    assert learner.identity_valid_at(T0)
    assert learner.identity_valid_at(expires - timedelta(microseconds=1))
    assert not learner.identity_valid_at(expires)


def test_I1_without_expires_at_a_verification_lasts_365_days() -> None:
    learner = Learner.register("ada", T0)
    learner.verify_identity("id", None, T0)
    assert learner.identity_valid_at(T0 + 365 * DAY - timedelta(seconds=1))
    assert not learner.identity_valid_at(T0 + 365 * DAY)


def test_I1_a_rejection_changes_nothing_that_was_valid() -> None:
    learner = Learner.register("ada", T0)
    learner.verify_identity("id", None, T0)
    learner.reject_identity("blurry photo", T0 + DAY)
    assert learner.identity_valid_at(T0 + 2 * DAY)
    assert len(events_of(learner, Learner.IdentityRejected)) == 1


def test_I1_a_revocation_ends_validity_at_its_time_but_not_a_later_verification() -> None:
    learner = Learner.register("ada", T0)
    learner.verify_identity("id", None, T0)
    learner.verify_identity("id", None, T0 + 20 * DAY)
    learner.revoke_identity("fraud", T0 + 10 * DAY)
    assert learner.identity_valid_at(T0 + 10 * DAY - timedelta(seconds=1))
    assert not learner.identity_valid_at(T0 + 10 * DAY)
    assert learner.identity_valid_at(T0 + 20 * DAY)


def test_I1_an_expiry_not_after_the_verification_is_refused() -> None:
    learner = Learner.register("ada", T0)
    learner.verify_identity("id", T0, T0)
    assert not learner.verifications
    assert [e.reason for e in events_of(learner, Learner.RequestRefused)] == [Reason.INVALID_EXPIRY]


@pytest.mark.parametrize("missing", ["pass", "pay", "identity"])
def test_K1_no_course_certificate_while_anything_is_missing(missing: str) -> None:
    learner = small_enrolled()
    if missing != "identity":
        learner.verify_identity("id", None, T0)
    if missing != "pay":
        learner.capture_payment("p", "a", PRICE, "USD", T0)
    if missing != "pass":
        learner.record_grade("a", Decimal("0.9"), True, T0)
    assert course_certificates(learner) == set()


def test_K1_a_failing_grade_does_not_certify_and_a_later_pass_does() -> None:
    learner = small_enrolled()
    learner.verify_identity("id", None, T0)
    learner.capture_payment("p", "a", PRICE, "USD", T0)
    learner.record_grade("a", Decimal("0.4"), False, T0 + DAY)
    assert course_certificates(learner) == set()
    learner.record_grade("a", Decimal("0.8"), True, T0 + 2 * DAY)
    cert = learner.live_course_certificate("a")
    assert cert is not None
    assert cert.earned_at == T0 + 2 * DAY


@pytest.mark.parametrize("order", list(itertools.permutations(["verify", "pay", "pass"])))
def test_K1_earned_in_whatever_order_the_facts_arrive(order: tuple[str, ...]) -> None:
    learner = small_enrolled()
    times = {"verify": T0 + DAY, "pay": T0 + 2 * DAY, "pass": T0 + 5 * DAY}
    for step in order:
        if step == "verify":
            learner.verify_identity("id", None, times[step])
        elif step == "pay":
            learner.capture_payment("p", "a", PRICE, "USD", times[step])
        else:
            learner.record_grade("a", Decimal("0.9"), True, times[step])
    cert = learner.live_course_certificate("a")
    assert cert is not None
    assert cert.earned_at == T0 + 5 * DAY
    evidence_kinds = [
        type(e).__name__
        for e in learner.pending_events
        if f"{learner.id}:{e.originator_version}" in cert.evidence
    ]
    assert sorted(evidence_kinds) == ["CourseGraded", "CoursePaid", "IdentityVerified"]


def test_K1_identity_must_be_valid_at_the_moment_everything_else_holds() -> None:
    learner = small_enrolled()
    learner.verify_identity("id", T0 + 5 * DAY, T0)
    learner.capture_payment("p", "a", PRICE, "USD", T0 + DAY)
    learner.record_grade("a", Decimal("0.9"), True, T0 + 6 * DAY)  # after expiry
    assert course_certificates(learner) == set()
    learner.verify_identity("id", None, T0 + 8 * DAY)
    cert = learner.live_course_certificate("a")
    assert cert is not None
    assert cert.earned_at == T0 + 8 * DAY


def test_K1_a_refunded_payment_does_not_count() -> None:
    learner = small_enrolled()
    learner.capture_payment("p", "a", PRICE, "USD", T0)
    learner.request_refund("p", T0 + DAY)
    learner.verify_identity("id", None, T0 + 2 * DAY)
    learner.record_grade("a", Decimal("0.9"), True, T0 + 2 * DAY)
    assert course_certificates(learner) == set()


def test_K1_at_most_one_live_course_certificate_per_course() -> None:
    learner = small_enrolled()
    learner.verify_identity("id", None, T0)
    certify(learner, "a", T0)
    learner.record_grade("a", Decimal("1.0"), True, T0 + DAY)
    learner.grant_aid("a", T0 + DAY)
    learner.verify_identity("id", None, T0 + 2 * DAY)
    assert len(events_of(learner, Learner.CourseCertified)) == 1


def test_K2_a_capstone_grade_without_an_active_enrollment_is_rejected() -> None:
    learner = small_enrolled()
    learner.unenroll("ds", T0 + DAY)
    learner.record_grade("cap", Decimal("0.9"), True, T0 + 2 * DAY)
    rejected = events_of(learner, Learner.CapstoneGradeRejected)
    assert [e.reason for e in rejected] == [Reason.CAPSTONE_NOT_ENROLLED]
    assert not learner.is_passed("cap")


def test_K2_a_capstone_grade_before_the_courses_are_certified_is_rejected_naming_them() -> None:
    learner = small_enrolled()
    learner.verify_identity("id", None, T0)
    certify(learner, "a", T0)
    learner.record_grade("b", Decimal("0.9"), True, T0)
    learner.record_grade("cap", Decimal("0.9"), True, T0 + DAY)
    (rejected,) = events_of(learner, Learner.CapstoneGradeRejected)
    assert rejected.reason == Reason.CAPSTONE_COURSES_NOT_CERTIFIED
    assert list(rejected.missing) == ["b: not paid", "c: not passed, not paid"]
    assert not learner.is_passed("cap")


def test_K2_a_capstone_grade_is_accepted_once_every_course_is_certified() -> None:
    learner = small_enrolled()
    learner.verify_identity("id", None, T0)
    for course in SMALL:
        certify(learner, course, T0)
    learner.record_grade("cap", Decimal("0.9"), True, T0 + DAY)
    assert events_of(learner, Learner.CapstoneGradeRejected) == []
    assert learner.is_passed("cap")


def test_K2_a_policy_not_asking_for_all_courses_accepts_the_capstone_early() -> None:
    learner = small_enrolled(Policy(capstone_requires_all_courses=False))
    learner.record_grade("cap", Decimal("0.9"), True, T0 + DAY)
    assert events_of(learner, Learner.CapstoneGradeRejected) == []
    assert learner.is_passed("cap")


def complete(learner: Learner, at=T0) -> None:
    learner.verify_identity("id", None, at)
    for course in (*SMALL, "cap"):
        certify(learner, course, at)


def test_K3_a_specialization_certificate_is_issued_once_with_its_evidence() -> None:
    learner = small_enrolled()
    complete(learner)
    learner.record_grade("a", Decimal("1.0"), True, T0 + DAY)
    learner.verify_identity("id", None, T0 + 2 * DAY)
    (cert,) = specialization_certificates(learner)
    assert cert.curriculum_version == 1
    course_certs = [learner.live_course_certificate(c) for c in (*SMALL, "cap")]
    assert cert.course_certificate_ids == tuple(c.certificate_id for c in course_certs)
    verification = learner.verifications[0].event_id
    assert cert.evidence == (*(c.event_id for c in course_certs), verification)
    assert len(events_of(learner, Learner.SpecializationCertified)) == 1


def test_K3_course_certificates_earned_before_enrolling_count() -> None:
    spec = catalog(
        courses=SMALL, capstone="cap", policy=Policy(capstone_requires_all_courses=False)
    )
    other = catalog("other", courses=(*SMALL[:2], "z"), capstone="cap")
    learner = enrolled(other)
    learner.verify_identity("id", None, T0)
    for course in SMALL[:2]:
        certify(learner, course, T0)
    learner.unenroll("other", T0 + DAY)
    enrolled(spec, T0 + 2 * DAY, learner)
    certify(learner, "c", T0 + 3 * DAY)
    certify(learner, "cap", T0 + 3 * DAY)
    (cert,) = specialization_certificates(learner)
    assert cert.earned_at == T0 + 3 * DAY


def test_K3_no_certificate_for_an_enrollment_that_ended() -> None:
    learner = small_enrolled(Policy(capstone_requires_all_courses=False))
    for course in (*SMALL, "cap"):
        certify(learner, course, T0)
    learner.unenroll("ds", T0 + DAY)
    learner.verify_identity("id", None, T0 + 2 * DAY)
    assert course_certificates(learner) == {*SMALL, "cap"}
    assert specialization_certificates(learner) == []


def test_K3_identity_must_be_valid_when_the_last_certificate_is_earned() -> None:
    learner = small_enrolled(Policy(capstone_requires_all_courses=False))
    learner.verify_identity("id", T0 + 10 * DAY, T0)
    for course in SMALL:
        certify(learner, course, T0)
    learner.capture_payment("pay-cap", "cap", PRICE, "USD", T0)
    learner.record_grade("cap", Decimal("0.9"), True, T0 + 20 * DAY)
    assert specialization_certificates(learner) == []
    learner.verify_identity("id", None, T0 + 21 * DAY)
    (cert,) = specialization_certificates(learner)
    assert cert.earned_at == T0 + 21 * DAY


def test_K4_verification_codes_are_unique_and_carry_at_least_80_random_bits() -> None:
    codes = set()
    for n in range(200):
        learner = small_enrolled()
        complete(learner, T0 + n * DAY)
        codes.update(c.verification_code for c in learner.certificates.values())
    assert len(codes) == 200 * 5
    for code in codes:
        assert re.fullmatch(r"[A-Za-z0-9_-]{20}", code)  # 20 base64url chars = 120 bits


def test_K5_trust_and_safety_revokes_a_course_certificate_and_the_unsatisfied_one() -> None:
    learner = small_enrolled()
    complete(learner)
    course_cert = learner.live_course_certificate("b")
    learner.revoke_certificate(course_cert.certificate_id, "plagiarism", T0 + DAY)
    assert not course_cert.is_live
    assert course_cert.revoked_reason == "plagiarism"
    assert specialization_certificates(learner) == []
    learner.verify_identity("id", None, T0 + 2 * DAY)
    learner.record_grade("b", Decimal("1.0"), True, T0 + 3 * DAY)
    assert learner.live_course_certificate("b") is None  # no automatic re-issue


def test_K5_revoking_a_specialization_certificate_leaves_the_course_certificates() -> None:
    learner = small_enrolled()
    complete(learner)
    (cert,) = specialization_certificates(learner)
    learner.revoke_certificate(cert.certificate_id, "identity fraud", T0 + DAY)
    assert specialization_certificates(learner) == []
    assert course_certificates(learner) == {*SMALL, "cap"}


def test_K5_unknown_or_already_revoked_certificates_are_refused() -> None:
    learner = small_enrolled()
    complete(learner)
    (cert,) = specialization_certificates(learner)
    learner.revoke_certificate("nope", "x", T0 + DAY)
    learner.revoke_certificate(cert.certificate_id, "x", T0 + DAY)
    learner.revoke_certificate(cert.certificate_id, "again", T0 + 2 * DAY)
    assert [e.reason for e in events_of(learner, Learner.RequestRefused)] == [
        Reason.CERTIFICATE_UNKNOWN,
        Reason.CERTIFICATE_ALREADY_REVOKED,
    ]


def test_K6_a_revoked_certificate_stays_in_the_history() -> None:
    learner = small_enrolled()
    complete(learner)
    (cert,) = specialization_certificates(learner)
    learner.revoke_certificate(cert.certificate_id, "x", T0 + DAY)
    assert cert.certificate_id in learner.certificates
    assert specialization_certificates(learner, live_only=False) == [cert]
    assert len(events_of(learner, Learner.SpecializationCertified)) == 1


def test_E1_intent_is_recorded_not_required() -> None:
    spec = catalog(courses=SMALL, capstone="cap")
    learner = Learner.register("ada", T0)
    learner.enroll(spec, "ds", Intent.AUDIT, T0)
    (enrolled,) = events_of(learner, Learner.Enrolled)
    assert enrolled.intent == Intent.AUDIT.value  # recorded as stated, on the event
    enrollment = learner.active_enrollment("ds")
    assert enrollment is not None and enrollment.intent is Intent.AUDIT
    complete(learner)
    assert len(specialization_certificates(learner)) == 1  # ... and not required
    still = learner.active_enrollment("ds")
    assert still is not None and still.intent is Intent.AUDIT


def test_I1_K1_a_late_revocation_revokes_certificates_earned_on_the_ended_verification() -> None:
    learner = small_enrolled()
    learner.verify_identity("id", None, T0)
    certify(learner, "a", T0 + 5 * DAY)
    certify(learner, "b", T0 + DAY)
    learner.revoke_identity("stolen document", T0 + 2 * DAY)  # arrives after the certificates
    assert course_certificates(learner) == {"b"}
    (revoked,) = events_of(learner, Learner.CertificateRevoked)
    assert revoked.reason == Reason.IDENTITY_REVOKED
    learner.verify_identity("id", None, T0 + 10 * DAY)
    cert = learner.live_course_certificate("a")
    assert cert is not None
    assert cert.earned_at == T0 + 10 * DAY


def test_I1_a_verification_arriving_after_a_later_revocation_ends_at_it() -> None:
    learner = Learner.register("ada", T0)
    learner.revoke_identity("fraud", T0 + 5 * DAY)
    learner.verify_identity("id", None, T0)
    assert learner.identity_valid_at(T0 + DAY)
    assert not learner.identity_valid_at(T0 + 5 * DAY)


def test_K1_a_course_certificate_names_the_pinned_curricula_requiring_it() -> None:
    learner = small_enrolled()
    learner.verify_identity("id", None, T0)
    certify(learner, "a", T0)
    cert = learner.live_course_certificate("a")
    assert cert is not None
    assert cert.curricula == ("ds@v1",)
    assert len(cert.verification_code) == 20
    assert cert.certificate_id
