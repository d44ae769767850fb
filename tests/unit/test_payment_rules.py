"""P1-P5: payments count once, at the pinned price; refunds within the window; chargebacks."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from ledger.application import Ledger
from ledger.domain import Learner, Policy, Price, Reason
from ledger.domain.learner_state import Intent, PaymentState

from .helpers import (
    DAY,
    DS_COURSES,
    PRICE,
    T0,
    catalog,
    certify,
    course_certificates,
    enrolled,
    events_of,
    specialization_certificates,
)


def returned_reasons(learner: Learner) -> list[str]:
    return [e.reason for e in events_of(learner, Learner.PaymentToBeReturned)]


def denied_reasons(learner: Learner) -> list[str]:
    return [e.reason for e in events_of(learner, Learner.RefundDenied)]


def test_P1_a_payment_at_the_pinned_price_for_an_enrolled_course_counts() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0 + DAY)
    assert learner.is_paid("ds-1")
    assert learner.payments["p1"].state is PaymentState.COUNTED
    assert returned_reasons(learner) == []


def test_P1_the_capstone_is_paid_like_any_course() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "ds-capstone", PRICE, "USD", T0)
    assert learner.is_paid("ds-capstone")


def test_P1_a_payment_for_a_course_in_no_active_enrollment_is_unmatched() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "other-course", PRICE, "USD", T0)
    assert not learner.is_paid("other-course")
    assert returned_reasons(learner) == [Reason.NO_ACTIVE_ENROLLMENT]
    assert learner.payments["p1"].state is PaymentState.TO_BE_RETURNED


def test_P1_a_payment_after_unenrolling_is_unmatched() -> None:
    learner = enrolled()
    learner.unenroll("ds", T0 + DAY)
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0 + 2 * DAY)
    assert not learner.is_paid("ds-1")
    assert returned_reasons(learner) == [Reason.NO_ACTIVE_ENROLLMENT]


def test_P1_a_wrong_amount_or_currency_is_unmatched() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "ds-1", Decimal("48.99"), "USD", T0)
    learner.capture_payment("p2", "ds-1", PRICE, "EUR", T0)
    assert not learner.is_paid("ds-1")
    assert returned_reasons(learner) == [Reason.WRONG_AMOUNT, Reason.WRONG_AMOUNT]


def test_P1_the_price_is_the_one_pinned_at_enrollment() -> None:
    spec = catalog(price=Price(Decimal("79.00"), "USD"))
    learner = enrolled(spec)
    spec.revise(
        courses=DS_COURSES,
        capstone_course_id="ds-capstone",
        price=Price(Decimal("99.00"), "USD"),
        at=T0 + DAY,
    )
    learner.capture_payment("p1", "ds-1", Decimal("99.00"), "USD", T0 + 2 * DAY)
    learner.capture_payment("p2", "ds-1", Decimal("79.00"), "USD", T0 + 2 * DAY)
    assert returned_reasons(learner) == [Reason.WRONG_AMOUNT]
    assert learner.payments["p2"].state is PaymentState.COUNTED


def test_P1_a_course_shared_by_two_specializations_is_paid_once_and_counts_for_both() -> None:
    ds = catalog("ds", courses=("shared", "ds-2", "ds-3"), capstone="ds-cap")
    ml = catalog("ml", courses=("shared", "ml-2", "ml-3"), capstone="ml-cap")
    learner = enrolled(ds)
    enrolled(ml, learner=learner)
    learner.capture_payment("p1", "shared", PRICE, "USD", T0)
    learner.capture_payment("p2", "shared", PRICE, "USD", T0 + DAY)
    assert learner.is_paid("shared")
    assert returned_reasons(learner) == [Reason.COURSE_ALREADY_PAID]


def test_P1_E0_a_payment_from_a_learner_never_seen_is_recorded_unmatched(
    ledger: Ledger,
) -> None:
    with ledger.session() as session:
        session.capture_payment("zoe", "p1", "ds-1", PRICE, "USD", T0)
    learner = ledger.get_learner("zoe")
    assert learner is not None
    assert learner.payments["p1"].state is PaymentState.TO_BE_RETURNED
    assert learner.payments["p1"].reason == Reason.NO_ACTIVE_ENROLLMENT


def test_P2_the_same_payment_id_again_is_a_no_op() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0)
    version = learner.version
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0 + DAY)
    learner.capture_payment("p1", "ds-2", PRICE, "USD", T0 + DAY)
    assert learner.version == version


def test_P2_a_second_payment_for_a_paid_course_is_a_duplicate_to_be_returned() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0)
    learner.capture_payment("p2", "ds-1", PRICE, "USD", T0 + DAY)
    assert returned_reasons(learner) == [Reason.COURSE_ALREADY_PAID]
    assert learner.payments["p2"].state is PaymentState.TO_BE_RETURNED
    assert [p.payment_id for p in learner.payments.values() if p.state is PaymentState.COUNTED] == [
        "p1"
    ]


def test_P3_financial_aid_counts_as_payment() -> None:
    learner = enrolled()
    learner.grant_aid("ds-1", T0)
    learner.verify_identity("id", None, T0)
    learner.record_grade("ds-1", Decimal("0.8"), True, T0 + DAY)
    assert learner.is_paid("ds-1")
    assert course_certificates(learner) == {"ds-1"}
    assert learner.live_course_certificate("ds-1").payment_id is None


def test_P3_a_payment_for_a_course_covered_by_aid_is_returned() -> None:
    learner = enrolled()
    learner.grant_aid("ds-1", T0)
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0 + DAY)
    assert returned_reasons(learner) == [Reason.COURSE_ALREADY_PAID]


def test_P4_refund_granted_within_the_window_makes_the_course_unpaid() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0)
    learner.request_refund("p1", T0 + 3 * DAY)
    assert not learner.is_paid("ds-1")
    assert learner.payments["p1"].state is PaymentState.REFUNDED
    assert len(events_of(learner, Learner.RefundGranted)) == 1


def test_P4_refund_granted_on_day_14() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0)
    learner.request_refund("p1", T0 + 14 * DAY)
    assert learner.payments["p1"].state is PaymentState.REFUNDED


def test_P4_refund_denied_after_window() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0)
    learner.request_refund("p1", T0 + 14 * DAY + timedelta(seconds=1))
    learner.request_refund("p1", T0 + 15 * DAY)
    assert denied_reasons(learner) == [Reason.REFUND_WINDOW_CLOSED] * 2
    assert learner.is_paid("ds-1")


def test_P4_the_window_is_the_pinned_policy() -> None:
    learner = enrolled(catalog(policy=Policy(refund_window_days=30)))
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0)
    learner.request_refund("p1", T0 + 30 * DAY)
    assert learner.payments["p1"].state is PaymentState.REFUNDED


def test_P4_refund_denied_for_an_unknown_payment() -> None:
    learner = enrolled()
    learner.request_refund("nope", T0)
    assert denied_reasons(learner) == [Reason.PAYMENT_UNKNOWN]


def test_P4_E0_refund_request_from_a_learner_never_seen_is_recorded_denied(
    ledger: Ledger,
) -> None:
    with ledger.session() as session:
        session.request_refund("zoe", "p9", T0)
    learner = ledger.get_learner("zoe")
    assert learner is not None
    assert [
        e.reason for e in ledger.events.get(learner.id) if isinstance(e, Learner.RefundDenied)
    ] == [Reason.PAYMENT_UNKNOWN]


def test_P4_refund_denied_when_already_refunded() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0)
    learner.request_refund("p1", T0 + DAY)
    learner.request_refund("p1", T0 + 2 * DAY)
    assert denied_reasons(learner) == [Reason.ALREADY_REFUNDED]


def test_P4_refund_denied_for_a_payment_not_counted() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "elsewhere", PRICE, "USD", T0)
    learner.request_refund("p1", T0 + DAY)
    assert denied_reasons(learner) == [Reason.PAYMENT_NOT_COUNTED]


def test_P4_refund_denied_once_a_course_certificate_was_earned() -> None:
    learner = enrolled()
    learner.verify_identity("id", None, T0)
    certify(learner, "ds-1", T0 + DAY)
    learner.request_refund("pay-ds-1", T0 + 2 * DAY)
    assert denied_reasons(learner) == [Reason.COURSE_CERTIFIED]
    assert learner.is_paid("ds-1")


def test_P4_refund_denied_after_a_chargeback() -> None:
    learner = enrolled()
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0)
    learner.charge_back("p1", T0 + DAY)
    learner.request_refund("p1", T0 + 2 * DAY)
    assert denied_reasons(learner) == [Reason.PAYMENT_CHARGED_BACK]


def test_P5_a_chargeback_unpays_and_revokes_what_rested_on_it() -> None:
    spec = catalog(courses=("a", "b", "c"), capstone="cap")
    learner = enrolled(spec)
    learner.verify_identity("id", None, T0)
    for course in ("a", "b", "c", "cap"):
        certify(learner, course, T0 + DAY)
    assert len(specialization_certificates(learner)) == 1
    learner.charge_back("pay-b", T0 + 40 * DAY)
    assert not learner.is_paid("b")
    assert course_certificates(learner) == {"a", "c", "cap"}
    assert specialization_certificates(learner) == []
    revoked = events_of(learner, Learner.CertificateRevoked)
    assert [e.reason for e in revoked] == [
        Reason.PAYMENT_CHARGED_BACK,
        Reason.COURSE_CERTIFICATE_REVOKED,
    ]


def test_P5_K5_no_blind_cascade_when_the_course_is_still_covered() -> None:
    spec = catalog(courses=("a", "b", "c"), capstone="cap")
    learner = enrolled(spec)
    learner.verify_identity("id", None, T0)
    for course in ("a", "b", "c", "cap"):
        certify(learner, course, T0 + DAY)
    learner.grant_aid("b", T0 + 2 * DAY)
    learner.charge_back("pay-b", T0 + 40 * DAY)
    assert course_certificates(learner) == {"a", "b", "c", "cap"}
    assert len(specialization_certificates(learner)) == 1


def test_P5_a_chargeback_of_an_unknown_payment_is_recorded_all_the_same() -> None:
    learner = enrolled()
    learner.charge_back("ghost", T0)
    chargebacks = events_of(learner, Learner.PaymentChargedBack)
    assert [(e.payment_id, e.course_id) for e in chargebacks] == [("ghost", None)]


def test_P1_intent_does_not_matter_for_payment() -> None:
    spec = catalog()
    learner = Learner.register("ada", T0)
    learner.enroll(spec, "ds", Intent.AUDIT, T0)
    learner.capture_payment("p1", "ds-1", PRICE, "USD", T0)
    assert learner.is_paid("ds-1")
