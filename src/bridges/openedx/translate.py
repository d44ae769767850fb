"""Open edX events as the ledger's inbound messages: one function per event type, each only
reading what the ledger needs and never the personal data (username, e-mail, name) the events
carry. Pure: the same event and mapping give the same messages, byte for byte.

The ledger message's identity comes from the Open edX event's: `source` is
`urn:openedx:<ce_source>`, `id` is `<ce_id>`. Kafka delivers at least once, so an event may
come again; the intake then finds a message it accepted already and does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridges.openedx.avro import Untranslatable
from bridges.openedx.mapping import CourseRun, Mapping
from commands.cloudevents import STRUCTURED_CONTENT_TYPE, RejectionError, parse, structured

#: Open edX enrollment modes that lead to a certificate: the learner's intent (E1).
CERTIFICATE_MODES = frozenset(
    {"verified", "professional", "no-id-professional", "credit", "masters", "executive-education"}
)

#: The ledger's id of a learner's live course certificate, if any (for revocations).
CertificateLookup = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Translated:
    """One ledger message, ready for `ledger.intake`."""

    key: bytes
    value: bytes
    type: str


@dataclass(frozen=True)
class Envelope:
    """What the Open edX event's headers say of it."""

    event_type: str
    event_id: str
    source: str
    time: datetime


def envelope(headers: dict[str, str]) -> Envelope:
    """The event's CloudEvents headers (`ce_*`), or `Untranslatable` naming what is missing."""
    missing = [h for h in ("ce_type", "ce_id", "ce_source", "ce_time") if not headers.get(h)]
    if missing:
        raise Untranslatable(
            "not_cloudevent", f"the Open edX message lacks the header(s) {', '.join(missing)}"
        )
    try:
        time = datetime.fromisoformat(headers["ce_time"].replace("Z", "+00:00"))
        time = time if time.tzinfo else time.replace(tzinfo=UTC)
    except ValueError:
        raise Untranslatable(
            "not_cloudevent", f"ce_time {headers['ce_time'][:60]!r} is not an ISO 8601 time"
        ) from None
    return Envelope(headers["ce_type"], headers["ce_id"], headers["ce_source"], time)


class Translator:
    """Open edX events to ledger messages, by the mapping."""

    def __init__(self, mapping: Mapping, certificates: CertificateLookup) -> None:
        self.mapping = mapping
        self.certificates = certificates
        self._by_type: dict[str, Callable[[Envelope, dict[str, Any]], list[Translated]]] = {
            "org.openedx.learning.course.enrollment.created.v1": self._enrolled,
            "org.openedx.learning.course.enrollment.changed.v1": self._enrollment_changed,
            "org.openedx.learning.course.unenrollment.completed.v1": self._unenrolled,
            "org.openedx.learning.course.passing.status.updated.v1": self._passing_status,
            "org.openedx.learning.course.persistent_grade_summary.changed.v1": self._grade,
            "org.openedx.learning.idv_attempt.approved.v1": self._verified,
            "org.openedx.learning.idv_attempt.denied.v1": self._denied,
            "org.openedx.learning.certificate.revoked.v1": self._certificate_revoked,
        }

    @property
    def event_types(self) -> list[str]:
        return sorted(self._by_type)

    def translate(self, event: Envelope, data: dict[str, Any]) -> list[Translated]:
        """The ledger messages an event becomes (none if the mapping says to skip it)."""
        handler = self._by_type.get(event.event_type)
        if handler is None:
            raise Untranslatable(
                "unknown_openedx_type",
                f"the bridge does not translate {event.event_type!r}; it translates "
                + ", ".join(self.event_types),
            )
        try:
            return handler(event, data)
        except (KeyError, TypeError, AttributeError) as error:
            raise Untranslatable(
                "openedx_data_invalid",
                f"{event.event_type} data lacks what the bridge reads: {type(error).__name__} "
                f"{error}",
            ) from None

    # The mapping

    def _learner(self, user: dict[str, Any] | int) -> str:
        user_id = user if isinstance(user, int) else user["id"]
        return self.mapping.learner_id(int(user_id))

    def _run(self, course: dict[str, Any]) -> CourseRun | None:
        key = str(course["course_key"])
        run = self.mapping.courses.get(key)
        if run is None and not self.mapping.skip_unmapped:
            raise Untranslatable(
                "unmapped_course",
                f"course run {key!r} is not in the Open edX mapping: map it (or set "
                'unmapped.courses = "skip")',
            )
        return run

    def _specialization(self, course: dict[str, Any]) -> str | None:
        run = self._run(course)
        if run is None:
            return None
        if run.specialization is None and not self.mapping.skip_unmapped:
            raise Untranslatable(
                "no_specialization",
                f"course run {course['course_key']!r} maps to course {run.course!r} but to no "
                "specialization, so an enrollment in it enrolls in nothing: add "
                "`specialization` to its entry",
            )
        return run.specialization

    # One function per event type

    def _message(
        self, event: Envelope, ledger_type: str, learner: str, data: dict[str, Any]
    ) -> list[Translated]:
        value = structured(
            ledger_type, f"urn:openedx:{event.source}", event.event_id, event.time, learner, data
        )
        try:  # exactly as the intake will check it: what it would refuse is refused here
            parse(value, [("content-type", STRUCTURED_CONTENT_TYPE.encode())])
        except RejectionError as error:
            raise Untranslatable(error.reason, error.message) from None
        return [Translated(learner.encode(), value, ledger_type)]

    def _enrollment(
        self, event: Envelope, enrollment: dict[str, Any], ledger_type: str, with_intent: bool
    ) -> list[Translated]:
        specialization = self._specialization(enrollment["course"])
        if specialization is None:
            return []
        learner = self._learner(enrollment["user"])
        data: dict[str, Any] = {"learner_id": learner, "specialization_id": specialization}
        if with_intent:
            mode = str(enrollment["mode"])
            data["intent"] = "certificate" if mode in CERTIFICATE_MODES else "audit"
        return self._message(event, ledger_type, learner, data)

    def _enrolled(self, event: Envelope, data: dict[str, Any]) -> list[Translated]:
        return self._enrollment(event, data["enrollment"], "ledger.learner.enrolled.v1", True)

    def _enrollment_changed(self, event: Envelope, data: dict[str, Any]) -> list[Translated]:
        enrollment = data["enrollment"]
        if not enrollment["is_active"]:
            return self._enrollment(event, enrollment, "ledger.learner.unenrolled.v1", False)
        return self._enrollment(event, enrollment, "ledger.learner.intent_changed.v1", True)

    def _unenrolled(self, event: Envelope, data: dict[str, Any]) -> list[Translated]:
        return self._enrollment(event, data["enrollment"], "ledger.learner.unenrolled.v1", False)

    def _graded(
        self,
        event: Envelope,
        user: dict[str, Any] | int,
        course: dict[str, Any],
        grade: float,
        passed: bool,
    ) -> list[Translated]:
        run = self._run(course)
        if run is None:
            return []
        learner = self._learner(user)
        grade = min(1.0, max(0.0, float(grade)))
        data = {
            "learner_id": learner,
            "course_id": run.course,
            "grade": f"{grade:.4f}",
            "passed": bool(passed),
        }
        return self._message(event, "ledger.course.graded.v1", learner, data)

    def _passing_status(self, event: Envelope, data: dict[str, Any]) -> list[Translated]:
        status = data["course_passing_status"]
        passing = bool(status["is_passing"])
        # The passing status carries no grade: 1 when passing, 0 when not (docs/openedx.md).
        return self._graded(event, status["user"], status["course"], float(passing), passing)

    def _grade(self, event: Envelope, data: dict[str, Any]) -> list[Translated]:
        grade = data["grade"]
        return self._graded(
            event,
            int(grade["user_id"]),
            grade["course"],
            float(grade["percent_grade"]),
            grade.get("passed_timestamp") is not None,
        )

    def _verified(self, event: Envelope, data: dict[str, Any]) -> list[Translated]:
        attempt = data["idv_attempt"]
        learner = self._learner(attempt["user"])
        message: dict[str, Any] = {"learner_id": learner, "method": "openedx_idv"}
        expires = attempt.get("expiration_date")
        if expires:
            moment = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
            message["expires_at"] = (
                moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            ).isoformat()
        return self._message(event, "ledger.identity.verified.v1", learner, message)

    def _denied(self, event: Envelope, data: dict[str, Any]) -> list[Translated]:
        learner = self._learner(data["idv_attempt"]["user"])
        message = {"learner_id": learner, "reason": "openedx_idv_denied"}
        return self._message(event, "ledger.identity.rejected.v1", learner, message)

    def _certificate_revoked(self, event: Envelope, data: dict[str, Any]) -> list[Translated]:
        certificate = data["certificate"]
        run = self._run(certificate["course"])
        if run is None:
            return []
        learner = self._learner(certificate["user"])
        certificate_id = self.certificates(learner, run.course)
        if certificate_id is None:
            raise Untranslatable(
                "no_live_certificate",
                f"learner {learner!r} holds no live certificate of course {run.course!r} to "
                "revoke (or the ledger has not projected it yet: retry the rejection later)",
            )
        message = {
            "learner_id": learner,
            "certificate_id": certificate_id,
            "reason": "openedx_certificate_revoked",
        }
        return self._message(event, "ledger.certificate.revoked.v1", learner, message)
