"""E0-E2: learners exist from their first message; enrollments pin a curriculum; refusals are
events with a reason, never exceptions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from ledger.domain import Learner, Reason
from ledger.domain.learner_state import Intent

from .helpers import DS_COURSES, T0, published


def refusals(learner: Learner) -> list[str]:
    return [e.reason for e in learner.pending_events if isinstance(e, Learner.RequestRefused)]


def test_E0_a_learner_is_registered_at_the_business_time_of_the_first_message() -> None:
    learner = Learner.register("ada", T0)
    assert learner.learner_id == "ada"
    assert learner.registered_at == T0
    assert learner.id == Learner.register("ada", T0 + timedelta(days=9)).id


def test_E1_enrolling_pins_the_newest_curriculum() -> None:
    spec = published()
    spec.revise(courses=DS_COURSES[:4], capstone_course_id="cap2", price=None, at=T0)
    learner = Learner.register("ada", T0)
    learner.enroll(spec, "ds", Intent.CERTIFICATE, T0 + timedelta(hours=1))
    enrollment = learner.active_enrollment("ds")
    assert enrollment is not None
    assert enrollment.curriculum.version == 2
    assert enrollment.curriculum.courses == DS_COURSES[:4]
    assert enrollment.intent is Intent.CERTIFICATE
    assert enrollment.enrolled_at == T0 + timedelta(hours=1)


def test_E1_enrolling_in_an_unknown_specialization_is_refused_with_a_reason() -> None:
    learner = Learner.register("ada", T0)
    learner.enroll(None, "nope", Intent.AUDIT, T0)
    assert learner.active_enrollment("nope") is None
    assert refusals(learner) == [Reason.SPECIALIZATION_UNKNOWN]


def test_E1_C3_enrolling_in_a_retired_specialization_is_refused() -> None:
    spec = published()
    spec.retire(at=T0)
    learner = Learner.register("ada", T0)
    learner.enroll(spec, "ds", Intent.AUDIT, T0 + timedelta(days=1))
    assert learner.active_enrollment("ds") is None
    assert refusals(learner) == [Reason.SPECIALIZATION_RETIRED]


def test_E1_a_second_active_enrollment_is_refused() -> None:
    spec = published()
    learner = Learner.register("ada", T0)
    learner.enroll(spec, "ds", Intent.AUDIT, T0)
    learner.enroll(spec, "ds", Intent.CERTIFICATE, T0 + timedelta(days=1))
    assert refusals(learner) == [Reason.ALREADY_ENROLLED]
    enrollment = learner.active_enrollment("ds")
    assert enrollment is not None
    assert enrollment.intent is Intent.AUDIT


def test_E2_unenrolling_ends_the_enrollment_and_keeps_results() -> None:
    spec = published()
    learner = Learner.register("ada", T0)
    learner.enroll(spec, "ds", Intent.AUDIT, T0)
    learner.record_grade("ds-1", Decimal("0.9"), True, T0 + timedelta(days=1))
    learner.unenroll("ds", T0 + timedelta(days=2))
    assert learner.active_enrollment("ds") is None
    assert learner.is_passed("ds-1")


def test_E2_re_enrolling_pins_the_then_newest_version() -> None:
    spec = published()
    learner = Learner.register("ada", T0)
    learner.enroll(spec, "ds", Intent.AUDIT, T0)
    learner.unenroll("ds", T0 + timedelta(days=1))
    spec.revise(courses=DS_COURSES[:3], capstone_course_id="cap2", price=None, at=T0)
    learner.enroll(spec, "ds", Intent.AUDIT, T0 + timedelta(days=2))
    enrollment = learner.active_enrollment("ds")
    assert enrollment is not None
    assert enrollment.curriculum.version == 2
    assert [e.curriculum.version for e in learner.past_enrollments] == [1]


def test_E2_unenrolling_without_an_enrollment_is_refused() -> None:
    learner = Learner.register("ada", T0)
    learner.unenroll("ds", T0)
    assert refusals(learner) == [Reason.NOT_ENROLLED]


def test_E2_intent_changes_while_enrolled_only() -> None:
    spec = published()
    learner = Learner.register("ada", T0)
    learner.change_intent("ds", Intent.CERTIFICATE, T0)
    learner.enroll(spec, "ds", Intent.AUDIT, T0)
    learner.change_intent("ds", Intent.CERTIFICATE, T0 + timedelta(days=1))
    learner.change_intent("ds", Intent.CERTIFICATE, T0 + timedelta(days=2))  # no-op
    enrollment = learner.active_enrollment("ds")
    assert enrollment is not None
    assert enrollment.intent is Intent.CERTIFICATE
    assert refusals(learner) == [Reason.NOT_ENROLLED]
    kinds = [type(e).__name__ for e in learner.pending_events]
    assert kinds.count("IntentChanged") == 1
