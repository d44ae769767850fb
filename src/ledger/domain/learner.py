"""One learner: enrollments, results, payments, identity and certificates (rules E0 to K6).

The learner is the consistency boundary: every rule about a learner is checked inside this one
aggregate, and its event stream is the history auditors replay. Each public method decides (the
rules run there, at the business time `at` of the message) and then triggers events; each
private `@event` method only assigns, so replaying old history never re-runs a rule. A "no" is
itself an event with a `Reason` code, never an exception.

After every command `_settle` looks for certificates that have become due (K1, K3). Course
certificates are judged on the business timeline: a course is certified from the earliest moment
at which it was passed, paid and the learner's identity was valid, whatever order those facts
arrived in; so the same facts always give the same certificates.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.chain import GENESIS, hash_of_event
from ledger.domain.ids import learner_aggregate_id
from ledger.domain.learner_state import (
    DEFAULT_VERIFICATION_DAYS,
    Certificate,
    CourseResult,
    Due,
    Enrollment,
    Intent,
    Payment,
    PaymentState,
    Verification,
    new_certificate_id,
    new_verification_code,
)
from ledger.domain.reasons import Reason
from ledger.domain.specialization import Curriculum, Policy, Price, Specialization
from ledger.domain.timeline import days_after

__all__ = ["Learner"]


class Learner(Aggregate):
    """Everything the ledger knows about one learner, decided under the rulebook."""

    TOPIC = "ledger.learner"

    #: Set by every event's `mutate`: the latest event, and its hash once computed.
    _last_event: Any
    _chain_head: str | None

    class Event(Aggregate.Event):
        """Base of every learner event: each carries the hash of the previous one."""

        previous_hash: str

        def mutate(self, aggregate: Any) -> Any:
            mutated = super().mutate(aggregate)
            if mutated is not None:
                # Hashed only when needed (the next event, or an auditor's question), so a
                # replay does not hash every event of the history.
                mutated._last_event = self
                mutated._chain_head = None
            return mutated

    class Created(Event, Aggregate.Created):
        """Unused: a learner is created by `Registered`; kept for the library's topic map."""

        TOPIC = "ledger.learner.created"

    class Registered(Event, Aggregate.Created):
        """The first message naming this learner arrived (E0)."""

        TOPIC = "ledger.learner.registered"
        class_version = 2
        learner_id: str
        at: datetime
        #: Added in v2: the inbound type that first named the learner (None for v1 events).
        first_message_type: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["first_message_type"] = None

    class Enrolled(Event):
        """The learner enrolled and pinned this curriculum version (E1)."""

        TOPIC = "ledger.learner.enrolled"
        specialization_id: str
        curriculum_version: int
        intent: str
        courses: tuple[str, ...]
        capstone_course_id: str
        price_amount: Decimal
        price_currency: str
        refund_window_days: int
        capstone_requires_all_courses: bool
        at: datetime

    class Unenrolled(Event):
        """The enrollment ended; results and certificates stay (E2)."""

        TOPIC = "ledger.learner.unenrolled"
        specialization_id: str
        at: datetime

    class IntentChanged(Event):
        """The learner changed what they want from an active enrollment (E2)."""

        TOPIC = "ledger.learner.intent_changed"
        specialization_id: str
        intent: str
        at: datetime

    class CourseGraded(Event):
        """The grading service reported a grade, and the ledger accepted it (K2 for capstones)."""

        TOPIC = "ledger.learner.course_graded"
        course_id: str
        grade: Decimal
        passed: bool
        at: datetime

    class CapstoneGradeRejected(Event):
        """K2 said no to a capstone grade; `missing` lists what it lacked."""

        TOPIC = "ledger.learner.capstone_grade_rejected"
        course_id: str
        grade: Decimal
        passed: bool
        reason: str
        missing: tuple[str, ...]
        at: datetime

    class CoursePaid(Event):
        """A payment matched an active enrollment's course at its pinned price (P1)."""

        TOPIC = "ledger.learner.course_paid"
        payment_id: str
        course_id: str
        amount: Decimal
        currency: str
        refund_window_days: int
        at: datetime

    class PaymentToBeReturned(Event):
        """A payment the ledger does not count: unmatched (P1) or a duplicate (P2)."""

        TOPIC = "ledger.learner.payment_to_be_returned"
        payment_id: str
        course_id: str
        amount: Decimal
        currency: str
        reason: str
        detail: str
        at: datetime

    class AidGranted(Event):
        """Financial aid covers this course: it counts as paid (P3)."""

        TOPIC = "ledger.learner.aid_granted"
        course_id: str
        at: datetime

    class RefundGranted(Event):
        """The refund was granted; the course is unpaid again (P4)."""

        TOPIC = "ledger.learner.refund_granted"
        payment_id: str
        course_id: str
        at: datetime

    class RefundDenied(Event):
        """The refund request was denied, with the reason (P4)."""

        TOPIC = "ledger.learner.refund_denied"
        payment_id: str
        reason: str
        detail: str
        at: datetime

    class PaymentChargedBack(Event):
        """The payment was charged back: never refused; the course is unpaid again (P5)."""

        TOPIC = "ledger.learner.payment_charged_back"
        payment_id: str
        course_id: str | None
        at: datetime

    class IdentityVerified(Event):
        """Identity verified, valid from `at` until `expires_at` unless revoked (I1)."""

        TOPIC = "ledger.learner.identity_verified"
        method: str
        expires_at: datetime
        at: datetime

    class IdentityRejected(Event):
        """A verification attempt failed; nothing valid before changes (I1)."""

        TOPIC = "ledger.learner.identity_rejected"
        reason: str
        at: datetime

    class IdentityRevoked(Event):
        """Every verification valid at `at` ends at `at` (I1)."""

        TOPIC = "ledger.learner.identity_revoked"
        reason: str
        at: datetime

    class CourseCertified(Event):
        """K1: passed, paid and identity valid, all at `earned_at`."""

        TOPIC = "ledger.learner.course_certified"
        certificate_id: str
        course_id: str
        verification_code: str
        earned_at: datetime
        evidence: tuple[str, ...]
        payment_id: str | None
        #: The pinned curricula ("<specialization>@v<version>") requiring the course, if any.
        curricula: tuple[str, ...]
        at: datetime

    class SpecializationCertified(Event):
        """K3: every pinned course and the capstone certified, identity valid, enrollment active."""

        TOPIC = "ledger.learner.specialization_certified"
        certificate_id: str
        specialization_id: str
        enrollment_id: str
        curriculum_version: int
        verification_code: str
        earned_at: datetime
        course_certificate_ids: tuple[str, ...]
        evidence: tuple[str, ...]
        at: datetime

    class CertificateRevoked(Event):
        """A certificate was revoked (K5, P5); it stays in the history (K6)."""

        TOPIC = "ledger.learner.certificate_revoked"
        certificate_id: str
        reason: str
        detail: str
        by_trust_and_safety: bool
        at: datetime

    class RequestRefused(Event):
        """The rules said no to an enrollment, intent, identity or revocation request."""

        TOPIC = "ledger.learner.request_refused"
        request: str
        subject: str
        reason: str
        detail: str
        at: datetime

    @staticmethod
    def create_id(learner_id: str) -> UUID:
        return learner_aggregate_id(learner_id)

    @classmethod
    def register(
        cls, learner_id: str, at: datetime, first_message_type: str | None = None
    ) -> Learner:
        """Create the learner named by a message for the first time (E0: never refused)."""
        return cls._create(
            cls.Registered,
            learner_id=learner_id,
            at=at,
            first_message_type=first_message_type,
            previous_hash=GENESIS,
        )

    @event(Registered)
    def __init__(self, learner_id: str, at: datetime) -> None:
        self.learner_id = learner_id
        self.registered_at = at
        self.enrollments: dict[str, Enrollment] = {}
        self.past_enrollments: list[Enrollment] = []
        self.results: dict[str, CourseResult] = {}
        self.payments: dict[str, Payment] = {}
        self.aid: dict[str, tuple[datetime, str]] = {}
        self.verifications: list[Verification] = []
        self.identity_revocations: list[datetime] = []
        self.certificates: dict[str, Certificate] = {}

    @property
    def chain_head(self) -> str:
        """The hash of this learner's latest event: what the next event links to."""
        if self._chain_head is None:
            self._chain_head = hash_of_event(self._last_event)
        return self._chain_head

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        # Every new event links to the one before it (see ledger.domain.chain).
        super().trigger_event(event_class, previous_hash=self.chain_head, **kwargs)

    def _next_event_id(self) -> str:
        return f"{self.id}:{self.version + 1}"

    # Queries the rules (and tests) ask

    def active_enrollment(self, specialization_id: str) -> Enrollment | None:
        enrollment = self.enrollments.get(specialization_id)
        return enrollment if enrollment is not None and enrollment.is_active else None

    def live_course_certificate(self, course_id: str) -> Certificate | None:
        for cert in self.certificates.values():
            if cert.kind == "course" and cert.subject == course_id and cert.is_live:
                return cert
        return None

    def specialization_certificates(self, enrollment_id: str) -> list[Certificate]:
        return [
            c
            for c in self.certificates.values()
            if c.kind == "specialization" and c.enrollment_id == enrollment_id
        ]

    def identity_valid_at(self, moment: datetime) -> bool:
        return any(v.valid_at(moment) for v in self.verifications)

    def is_passed(self, course_id: str) -> bool:
        result = self.results.get(course_id)
        return result is not None and result.first_pass is not None

    def paid_since(self, course_id: str) -> tuple[datetime, str, str | None] | None:
        """P1-P3: since when the course counts as paid, and on what: (time, event id, payment)."""
        facts: list[tuple[datetime, str, str | None]] = [
            (p.paid_at, p.event_id, p.payment_id)
            for p in self.payments.values()
            if p.course_id == course_id and p.state is PaymentState.COUNTED
        ]
        if course_id in self.aid:
            granted_at, event_id = self.aid[course_id]
            facts.append((granted_at, event_id, None))
        return min(facts, key=lambda f: f[0]) if facts else None

    def is_paid(self, course_id: str) -> bool:
        return self.paid_since(course_id) is not None

    def capstone_enrollments(self, course_id: str) -> list[Enrollment]:
        """Enrollments (active or ended) whose pinned capstone is `course_id`."""
        every = [*self.past_enrollments, *self.enrollments.values()]
        return [e for e in every if e.curriculum.capstone_course_id == course_id]

    def missing_for_course(self, course_id: str, at: datetime) -> list[str]:
        """Why a course has no live certificate, in words support staff can read."""
        if self.live_course_certificate(course_id) is not None:
            return []
        reasons = []
        if not self.is_passed(course_id):
            reasons.append("not passed")
        if not self.is_paid(course_id):
            reasons.append("not paid")
        if not self.identity_valid_at(at):
            reasons.append("identity not verified")
        if not reasons:
            reasons.append("certificate revoked")
        return reasons

    # Enrollment (E1, E2)

    def enroll(
        self,
        specialization: Specialization | None,
        specialization_id: str,
        intent: Intent,
        at: datetime,
    ) -> None:
        """E1: enroll in a published, not retired specialization, pinning its newest curriculum."""
        request = "enroll"
        if specialization is None:
            self._refuse(
                request,
                specialization_id,
                Reason.SPECIALIZATION_UNKNOWN,
                f"specialization {specialization_id} was never published",
                at,
            )
            return
        if specialization.is_retired:
            retired = specialization.retired_at
            when = f" on {retired:%Y-%m-%d}" if retired else ""
            self._refuse(
                request,
                specialization_id,
                Reason.SPECIALIZATION_RETIRED,
                f"specialization {specialization_id} was retired{when}",
                at,
            )
            return
        if self.active_enrollment(specialization_id) is not None:
            self._refuse(
                request,
                specialization_id,
                Reason.ALREADY_ENROLLED,
                f"already enrolled in {specialization_id}",
                at,
            )
            return
        pinned = specialization.current
        self._enrolled(
            specialization_id=specialization_id,
            curriculum_version=pinned.version,
            intent=intent.value,
            courses=pinned.courses,
            capstone_course_id=pinned.capstone_course_id,
            price_amount=pinned.price.amount,
            price_currency=pinned.price.currency,
            refund_window_days=pinned.policy.refund_window_days,
            capstone_requires_all_courses=pinned.policy.capstone_requires_all_courses,
            at=at,
        )
        self._settle(at)

    @event(Enrolled)
    def _enrolled(
        self,
        specialization_id: str,
        curriculum_version: int,
        intent: str,
        courses: tuple[str, ...],
        capstone_course_id: str,
        price_amount: Decimal,
        price_currency: str,
        refund_window_days: int,
        capstone_requires_all_courses: bool,
        at: datetime,
    ) -> None:
        previous = self.enrollments.get(specialization_id)
        if previous is not None:
            self.past_enrollments.append(previous)
        self.enrollments[specialization_id] = Enrollment(
            enrollment_id=self._next_event_id(),
            specialization_id=specialization_id,
            curriculum=Curriculum(
                version=curriculum_version,
                courses=tuple(courses),
                capstone_course_id=capstone_course_id,
                price=Price(Decimal(price_amount), price_currency),
                policy=Policy(refund_window_days, capstone_requires_all_courses),
            ),
            intent=Intent(intent),
            enrolled_at=at,
        )

    def unenroll(self, specialization_id: str, at: datetime) -> None:
        """E2: end an active enrollment; results and certificates stay."""
        if self.active_enrollment(specialization_id) is None:
            self._refuse(
                "unenroll",
                specialization_id,
                Reason.NOT_ENROLLED,
                f"no active enrollment in {specialization_id}",
                at,
            )
            return
        self._unenrolled(specialization_id=specialization_id, at=at)

    @event(Unenrolled)
    def _unenrolled(self, specialization_id: str, at: datetime) -> None:
        self.enrollments[specialization_id].ended_at = at

    def change_intent(self, specialization_id: str, intent: Intent, at: datetime) -> None:
        """E2: change intent while enrolled; the same intent again changes nothing."""
        enrollment = self.active_enrollment(specialization_id)
        if enrollment is None:
            self._refuse(
                "change_intent",
                specialization_id,
                Reason.NOT_ENROLLED,
                f"no active enrollment in {specialization_id}",
                at,
            )
            return
        if enrollment.intent is intent:
            return
        self._intent_changed(specialization_id=specialization_id, intent=intent.value, at=at)

    @event(IntentChanged)
    def _intent_changed(self, specialization_id: str, intent: str, at: datetime) -> None:
        self.enrollments[specialization_id].intent = Intent(intent)

    # Grades (K1, K2)

    def record_grade(self, course_id: str, grade: Decimal, passed: bool, at: datetime) -> None:
        """Record a grade; a capstone grade first has to pass K2."""
        capstones = self.capstone_enrollments(course_id)
        if capstones:
            refusal = self._capstone_refusal(course_id, capstones, at)
            if refusal is not None:
                reason, missing = refusal
                self._capstone_grade_rejected(
                    course_id=course_id,
                    grade=grade,
                    passed=passed,
                    reason=reason.value,
                    missing=missing,
                    at=at,
                )
                return
        self._course_graded(course_id=course_id, grade=grade, passed=passed, at=at)
        self._settle(at)

    def _capstone_refusal(
        self, course_id: str, capstones: list[Enrollment], at: datetime
    ) -> tuple[Reason, tuple[str, ...]] | None:
        """K2: None if some active enrollment accepts this capstone grade, else why not."""
        active = [e for e in capstones if e.is_active]
        if not active:
            specs = sorted({e.specialization_id for e in capstones})
            return Reason.CAPSTONE_NOT_ENROLLED, tuple(f"active enrollment in {s}" for s in specs)
        best: tuple[str, ...] | None = None
        for enrollment in active:
            if not enrollment.curriculum.policy.capstone_requires_all_courses:
                return None
            missing = tuple(
                f"{c}: {', '.join(self.missing_for_course(c, at))}"
                for c in enrollment.curriculum.courses
                if self.live_course_certificate(c) is None
            )
            if not missing:
                return None
            if best is None or len(missing) < len(best):
                best = missing
        assert best is not None  # noqa: S101 - active is non-empty, so the loop set it
        return Reason.CAPSTONE_COURSES_NOT_CERTIFIED, best

    @event(CourseGraded)
    def _course_graded(self, course_id: str, grade: Decimal, passed: bool, at: datetime) -> None:
        result = self.results.get(course_id)
        if result is None:
            result = CourseResult(course_id, Decimal(grade), passed, at)
            self.results[course_id] = result
        elif at >= result.graded_at:
            result.latest_grade, result.latest_passed, result.graded_at = Decimal(grade), passed, at
        if passed and (result.first_pass is None or at < result.first_pass[0]):
            result.first_pass = (at, self._next_event_id())

    @event(CapstoneGradeRejected)
    def _capstone_grade_rejected(
        self,
        course_id: str,
        grade: Decimal,
        passed: bool,
        reason: str,
        missing: tuple[str, ...],
        at: datetime,
    ) -> None:
        """A rejected grade changes no state: it is history, kept with what was missing."""

    # Payments (P1 to P5)

    def capture_payment(
        self, payment_id: str, course_id: str, amount: Decimal, currency: str, at: datetime
    ) -> None:
        """P1, P2: count a payment that matches an active enrollment's price, or return it."""
        if payment_id in self.payments:
            return  # P2: the same payment again
        matching = [
            e for e in self.enrollments.values() if e.is_active and course_id in e.required_courses
        ]
        if not matching:
            self._payment_to_be_returned(
                payment_id=payment_id,
                course_id=course_id,
                amount=amount,
                currency=currency,
                reason=Reason.NO_ACTIVE_ENROLLMENT.value,
                detail=f"{course_id} is in none of the learner's active enrollments",
                at=at,
            )
            return
        priced = [
            e
            for e in matching
            if e.curriculum.price.amount == amount and e.curriculum.price.currency == currency
        ]
        if not priced:
            prices = sorted(
                {f"{e.curriculum.price.amount} {e.curriculum.price.currency}" for e in matching}
            )
            self._payment_to_be_returned(
                payment_id=payment_id,
                course_id=course_id,
                amount=amount,
                currency=currency,
                reason=Reason.WRONG_AMOUNT.value,
                detail=f"paid {amount} {currency}; the pinned price is {' or '.join(prices)}",
                at=at,
            )
            return
        if self.is_paid(course_id):
            self._payment_to_be_returned(
                payment_id=payment_id,
                course_id=course_id,
                amount=amount,
                currency=currency,
                reason=Reason.COURSE_ALREADY_PAID.value,
                detail=f"{course_id} is already paid",
                at=at,
            )
            return
        window = max(e.curriculum.policy.refund_window_days for e in priced)
        self._course_paid(
            payment_id=payment_id,
            course_id=course_id,
            amount=amount,
            currency=currency,
            refund_window_days=window,
            at=at,
        )
        self._settle(at)

    @event(CoursePaid)
    def _course_paid(
        self,
        payment_id: str,
        course_id: str,
        amount: Decimal,
        currency: str,
        refund_window_days: int,
        at: datetime,
    ) -> None:
        self.payments[payment_id] = Payment(
            payment_id,
            course_id,
            Decimal(amount),
            currency,
            at,
            self._next_event_id(),
            PaymentState.COUNTED,
            refund_window_days,
        )

    @event(PaymentToBeReturned)
    def _payment_to_be_returned(
        self,
        payment_id: str,
        course_id: str,
        amount: Decimal,
        currency: str,
        reason: str,
        detail: str,
        at: datetime,
    ) -> None:
        self.payments[payment_id] = Payment(
            payment_id,
            course_id,
            Decimal(amount),
            currency,
            at,
            self._next_event_id(),
            PaymentState.TO_BE_RETURNED,
            0,
            reason,
        )

    def grant_aid(self, course_id: str, at: datetime) -> None:
        """P3: financial aid counts as payment; granting it twice changes nothing."""
        if course_id in self.aid:
            return
        self._aid_granted(course_id=course_id, at=at)
        self._settle(at)

    @event(AidGranted)
    def _aid_granted(self, course_id: str, at: datetime) -> None:
        self.aid[course_id] = (at, self._next_event_id())

    def request_refund(self, payment_id: str, at: datetime) -> None:
        """P4: refund only a counted payment, within its window, of a course not certified."""
        payment = self.payments.get(payment_id)
        refusal: tuple[Reason, str] | None = None
        if payment is None:
            refusal = Reason.PAYMENT_UNKNOWN, f"no payment {payment_id} for this learner"
        elif payment.state is PaymentState.REFUNDED:
            refusal = Reason.ALREADY_REFUNDED, f"payment {payment_id} was already refunded"
        elif payment.state is PaymentState.CHARGED_BACK:
            refusal = Reason.PAYMENT_CHARGED_BACK, f"payment {payment_id} was charged back"
        elif payment.state is PaymentState.TO_BE_RETURNED:
            refusal = (
                Reason.PAYMENT_NOT_COUNTED,
                f"payment {payment_id} was not counted ({payment.reason}) and is being "
                "returned already",
            )
        elif at > days_after(payment.paid_at, payment.refund_window_days):
            closed = days_after(payment.paid_at, payment.refund_window_days)
            refusal = (
                Reason.REFUND_WINDOW_CLOSED,
                f"the {payment.refund_window_days}-day refund window closed on "
                f"{closed.isoformat()}",
            )
        elif any(
            c.kind == "course" and c.subject == payment.course_id
            for c in self.certificates.values()
        ):
            refusal = (
                Reason.COURSE_CERTIFIED,
                f"a course certificate was earned for {payment.course_id}",
            )
        if refusal is not None:
            reason, detail = refusal
            self._refund_denied(payment_id=payment_id, reason=reason.value, detail=detail, at=at)
            return
        assert payment is not None  # noqa: S101 - every None path was refused above
        self._refund_granted(payment_id=payment_id, course_id=payment.course_id, at=at)
        self._settle(at)

    @event(RefundGranted)
    def _refund_granted(self, payment_id: str, course_id: str, at: datetime) -> None:
        self.payments[payment_id].state = PaymentState.REFUNDED

    @event(RefundDenied)
    def _refund_denied(self, payment_id: str, reason: str, detail: str, at: datetime) -> None:
        """A denial changes no state: it is history."""

    def charge_back(self, payment_id: str, at: datetime) -> None:
        """P5: never refused: the course is unpaid, certificates resting on the payment go (K5)."""
        payment = self.payments.get(payment_id)
        self._payment_charged_back(
            payment_id=payment_id, course_id=payment.course_id if payment else None, at=at
        )
        for cert in list(self.certificates.values()):
            if cert.kind == "course" and cert.is_live and cert.payment_id == payment_id:
                self._certificate_revoked(
                    certificate_id=cert.certificate_id,
                    reason=Reason.PAYMENT_CHARGED_BACK.value,
                    detail=f"payment {payment_id} for {cert.subject} was charged back",
                    by_trust_and_safety=False,
                    at=at,
                )
        self._settle(at)

    @event(PaymentChargedBack)
    def _payment_charged_back(self, payment_id: str, course_id: str | None, at: datetime) -> None:
        if payment_id in self.payments:
            self.payments[payment_id].state = PaymentState.CHARGED_BACK

    # Identity (I1)

    def verify_identity(self, method: str, expires_at: datetime | None, at: datetime) -> None:
        """I1: valid from `at` until `expires_at` (default a year later) unless revoked."""
        expires = expires_at or days_after(at, DEFAULT_VERIFICATION_DAYS)
        if expires <= at:
            self._refuse(
                "verify_identity",
                method,
                Reason.INVALID_EXPIRY,
                f"expires_at {expires.isoformat()} is not after {at.isoformat()}",
                at,
            )
            return
        self._identity_verified(method=method, expires_at=expires, at=at)
        self._settle(at)

    @event(IdentityVerified)
    def _identity_verified(self, method: str, expires_at: datetime, at: datetime) -> None:
        # A revocation already recorded with a later business time ends this one too, so the
        # outcome does not depend on which message arrived first.
        later_revocations = [r for r in self.identity_revocations if r >= at]
        self.verifications.append(
            Verification(
                self._next_event_id(), method, at, expires_at, min(later_revocations, default=None)
            )
        )

    def reject_identity(self, reason: str, at: datetime) -> None:
        """I1: a failed verification is history; nothing valid before changes."""
        self._identity_rejected(reason=reason, at=at)

    @event(IdentityRejected)
    def _identity_rejected(self, reason: str, at: datetime) -> None:
        """Changes nothing (I1)."""

    def revoke_identity(self, reason: str, at: datetime) -> None:
        """I1: every verification begun by `at` ends at `at`; later ones are untouched.

        A revocation may arrive after certificates that were earned later than its own time,
        on a verification it ends: those no longer rest on a valid identity and are revoked;
        `_settle` then re-issues course certificates another verification supports.
        """
        self._identity_revoked(reason=reason, at=at)
        by_event = {v.event_id: v for v in self.verifications}
        for cert in list(self.certificates.values()):
            verification = by_event.get(cert.evidence[-1])
            if cert.is_live and verification and not verification.valid_at(cert.earned_at):
                self._certificate_revoked(
                    certificate_id=cert.certificate_id,
                    reason=Reason.IDENTITY_REVOKED.value,
                    detail=f"the identity verification it rested on was revoked as of "
                    f"{at.isoformat()}, before it was earned",
                    by_trust_and_safety=False,
                    at=at,
                )
        self._settle(at)

    @event(IdentityRevoked)
    def _identity_revoked(self, reason: str, at: datetime) -> None:
        self.identity_revocations.append(at)
        for verification in self.verifications:
            ends = verification.revoked_at
            if verification.verified_at <= at and (ends is None or at < ends):
                verification.revoked_at = at

    # Certificates (K1, K3, K4, K5)

    def revoke_certificate(self, certificate_id: str, reason: str, at: datetime) -> None:
        """K5: trust & safety revokes a certificate; specialization certificates that rested on
        a revoked course certificate are re-evaluated, and revoked only if no longer satisfied."""
        cert = self.certificates.get(certificate_id)
        if cert is None:
            self._refuse(
                "revoke_certificate",
                certificate_id,
                Reason.CERTIFICATE_UNKNOWN,
                f"the learner has no certificate {certificate_id}",
                at,
            )
            return
        if not cert.is_live:
            self._refuse(
                "revoke_certificate",
                certificate_id,
                Reason.CERTIFICATE_ALREADY_REVOKED,
                f"certificate {certificate_id} was revoked on {cert.revoked_at:%Y-%m-%d}",
                at,
            )
            return
        self._certificate_revoked(
            certificate_id=certificate_id,
            reason=reason,
            detail=f"revoked by trust & safety: {reason}",
            by_trust_and_safety=True,
            at=at,
        )
        self._settle(at)

    @event(CertificateRevoked)
    def _certificate_revoked(
        self, certificate_id: str, reason: str, detail: str, by_trust_and_safety: bool, at: datetime
    ) -> None:
        cert = self.certificates[certificate_id]
        cert.revoked_at = at
        cert.revoked_reason = reason
        cert.revoked_by_trust_and_safety = by_trust_and_safety

    def course_certificate_due(self, course_id: str) -> Due | None:
        """K1: the earliest moment the course was passed, paid and identity was valid."""
        result = self.results.get(course_id)
        paid = self.paid_since(course_id)
        if result is None or result.first_pass is None or paid is None:
            return None
        passed_at, pass_event = result.first_pass
        paid_at, paid_event, payment_id = paid
        found = self.first_verified_moment(max(passed_at, paid_at))
        if found is None:
            return None
        earned_at, verification_event = found
        return Due(earned_at, (pass_event, paid_event, verification_event), payment_id)

    def specialization_certificate_due(self, enrollment: Enrollment) -> Due | None:
        """K3: the moment every required course is certified, enrolled and identity valid."""
        certs = [self.live_course_certificate(c) for c in enrollment.required_courses]
        if not enrollment.is_active or any(c is None for c in certs):
            return None
        live = [c for c in certs if c is not None]
        found = self.first_verified_moment(
            max([enrollment.enrolled_at, *(c.earned_at for c in live)])
        )
        if found is None:
            return None
        earned_at, verification_event = found
        return Due(earned_at, (*(c.event_id for c in live), verification_event))

    def first_verified_moment(self, since: datetime) -> tuple[datetime, str] | None:
        """The earliest moment from `since` on at which identity is valid, and on which
        verification (I1, for K1 and K3); None if there is none yet."""
        moments = [
            (max(since, v.verified_at), v.event_id)
            for v in self.verifications
            if max(since, v.verified_at) < v.ends_at
        ]
        return min(moments) if moments else None

    def _settle(self, at: datetime) -> None:
        """Issue every certificate now due (K1, K3) and revoke those no longer satisfied (K5)."""
        courses = set(self.results) | {p.course_id for p in self.payments.values()} | set(self.aid)
        for course_id in sorted(courses):
            if self.live_course_certificate(course_id) is not None:
                continue
            if any(
                c.kind == "course" and c.subject == course_id and c.revoked_by_trust_and_safety
                for c in self.certificates.values()
            ):
                continue  # trust & safety's revocation stands: no automatic re-issue
            due = self.course_certificate_due(course_id)
            if due is not None:
                self._course_certified(
                    certificate_id=new_certificate_id(),
                    course_id=course_id,
                    verification_code=new_verification_code(),
                    earned_at=due.earned_at,
                    evidence=due.evidence,
                    payment_id=due.payment_id,
                    curricula=tuple(
                        f"{e.specialization_id}@v{e.curriculum.version}"
                        for e in self.enrollments.values()
                        if e.is_active and course_id in e.required_courses
                    ),
                    at=at,
                )
        for cert in list(self.certificates.values()):
            if cert.kind != "specialization" or not cert.is_live:
                continue
            lost = [c for c in cert.course_certificate_ids if not self.certificates[c].is_live]
            unsatisfied = [
                c
                for c in lost
                if self.live_course_certificate(self.certificates[c].subject) is None
            ]
            if unsatisfied:
                courses_lost = ", ".join(self.certificates[c].subject for c in unsatisfied)
                self._certificate_revoked(
                    certificate_id=cert.certificate_id,
                    reason=Reason.COURSE_CERTIFICATE_REVOKED.value,
                    detail=f"no live course certificate any more for {courses_lost}",
                    by_trust_and_safety=False,
                    at=at,
                )
        for enrollment in list(self.enrollments.values()):
            if self.specialization_certificates(enrollment.enrollment_id):
                continue  # exactly once per enrollment (K3)
            due = self.specialization_certificate_due(enrollment)
            if due is None:
                continue
            live = [self.live_course_certificate(c) for c in enrollment.required_courses]
            course_certs = tuple(c.certificate_id for c in live if c is not None)
            self._specialization_certified(
                certificate_id=new_certificate_id(),
                specialization_id=enrollment.specialization_id,
                enrollment_id=enrollment.enrollment_id,
                curriculum_version=enrollment.curriculum.version,
                verification_code=new_verification_code(),
                earned_at=due.earned_at,
                course_certificate_ids=course_certs,
                evidence=due.evidence,
                at=at,
            )

    @event(CourseCertified)
    def _course_certified(
        self,
        certificate_id: str,
        course_id: str,
        verification_code: str,
        earned_at: datetime,
        evidence: tuple[str, ...],
        payment_id: str | None,
        curricula: tuple[str, ...],
        at: datetime,
    ) -> None:
        self.certificates[certificate_id] = Certificate(
            certificate_id=certificate_id,
            kind="course",
            subject=course_id,
            verification_code=verification_code,
            earned_at=earned_at,
            event_id=self._next_event_id(),
            evidence=tuple(evidence),
            payment_id=payment_id,
            curricula=tuple(curricula),
        )

    @event(SpecializationCertified)
    def _specialization_certified(
        self,
        certificate_id: str,
        specialization_id: str,
        enrollment_id: str,
        curriculum_version: int,
        verification_code: str,
        earned_at: datetime,
        course_certificate_ids: tuple[str, ...],
        evidence: tuple[str, ...],
        at: datetime,
    ) -> None:
        self.certificates[certificate_id] = Certificate(
            certificate_id=certificate_id,
            kind="specialization",
            subject=specialization_id,
            verification_code=verification_code,
            earned_at=earned_at,
            event_id=self._next_event_id(),
            evidence=tuple(evidence),
            curriculum_version=curriculum_version,
            enrollment_id=enrollment_id,
            course_certificate_ids=tuple(course_certificate_ids),
        )

    # Refusals

    def _refuse(
        self, request: str, subject: str, reason: Reason, detail: str, at: datetime
    ) -> None:
        self._request_refused(
            request=request, subject=subject, reason=reason.value, detail=detail, at=at
        )

    @event(RequestRefused)
    def _request_refused(
        self, request: str, subject: str, reason: str, detail: str, at: datetime
    ) -> None:
        """A refusal changes no state: it is history, kept for auditors and support staff."""


__all__ = [
    "Certificate",
    "CourseResult",
    "Enrollment",
    "Intent",
    "Learner",
    "Payment",
    "PaymentState",
    "Verification",
]
