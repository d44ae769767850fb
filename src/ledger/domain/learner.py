"""One learner: enrollments, course results and (in later rules) payments and certificates.

The learner is the consistency boundary: every rule about a learner is checked inside this one
aggregate, and its event stream is the history auditors replay. Each public method decides and
returns nothing; each private `@event` method only assigns, so replay never re-runs a rule. A
"no" is itself an event (`RequestRefused`) with a reason code, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.ids import learner_aggregate_id
from ledger.domain.reasons import Reason
from ledger.domain.specialization import Curriculum, Policy, Price, Specialization


class Intent(StrEnum):
    """What the learner said they want from an enrollment (E1)."""

    CERTIFICATE = "certificate"
    AUDIT = "audit"


@dataclass
class Enrollment:
    """The learner's enrollment in one specialization, with the curriculum it pinned (E1, E2)."""

    specialization_id: str
    curriculum: Curriculum
    intent: Intent
    enrolled_at: datetime
    ended_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


@dataclass
class CourseResult:
    """The latest grade the grading service sent for a course."""

    course_id: str
    grade: Decimal
    passed: bool
    graded_at: datetime


class Learner(Aggregate):
    """Everything the ledger knows about one learner, decided under the rulebook."""

    TOPIC = "ledger.learner"

    class Created(Aggregate.Created):
        """Unused: a learner is created by `Registered`; kept for the library's topic map."""

        TOPIC = "ledger.learner.created"

    class Registered(Aggregate.Created):
        """The first message naming this learner arrived (E0)."""

        TOPIC = "ledger.learner.registered"
        learner_id: str
        at: datetime

    class Enrolled(Aggregate.Event):
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

    class Unenrolled(Aggregate.Event):
        """The enrollment ended; results and certificates stay (E2)."""

        TOPIC = "ledger.learner.unenrolled"
        specialization_id: str
        at: datetime

    class IntentChanged(Aggregate.Event):
        """The learner changed what they want from an active enrollment (E2)."""

        TOPIC = "ledger.learner.intent_changed"
        specialization_id: str
        intent: str
        at: datetime

    class CourseGraded(Aggregate.Event):
        """The grading service reported a grade for a course."""

        TOPIC = "ledger.learner.course_graded"
        course_id: str
        grade: Decimal
        passed: bool
        at: datetime

    class RequestRefused(Aggregate.Event):
        """The rules said no; the reason code is one of `Reason`."""

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
    def register(cls, learner_id: str, at: datetime) -> Learner:
        """Create the learner named by a message for the first time (E0: never refused)."""
        return cls(learner_id=learner_id, at=at)

    @event(Registered)
    def __init__(self, learner_id: str, at: datetime) -> None:
        self.learner_id = learner_id
        self.registered_at = at
        self.enrollments: dict[str, Enrollment] = {}
        self.past_enrollments: list[Enrollment] = []
        self.results: dict[str, CourseResult] = {}

    # Enrollment (E1, E2)

    def active_enrollment(self, specialization_id: str) -> Enrollment | None:
        enrollment = self.enrollments.get(specialization_id)
        return enrollment if enrollment is not None and enrollment.is_active else None

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
            self._refuse(
                request,
                specialization_id,
                Reason.SPECIALIZATION_RETIRED,
                f"specialization {specialization_id} was retired on "
                f"{specialization.retired_at:%Y-%m-%d}",
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

    # Courses

    def record_grade(self, course_id: str, grade: Decimal, passed: bool, at: datetime) -> None:
        """Record what the grading service decided; the grade is taken as sent."""
        self._course_graded(course_id=course_id, grade=grade, passed=passed, at=at)

    @event(CourseGraded)
    def _course_graded(self, course_id: str, grade: Decimal, passed: bool, at: datetime) -> None:
        self.results[course_id] = CourseResult(course_id, Decimal(grade), passed, at)

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
