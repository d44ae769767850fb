"""One small function per inbound type: translate the message into one `LedgerSession` call.

The CloudEvent `time` is the business time every rule is judged at; it travels into the events
the aggregates record. Nothing here decides anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from commands import messages as m
from commands.cloudevents import InboundMessage
from ledger.application import LedgerSession
from ledger.domain import Policy, Price
from ledger.domain.learner_state import Intent

Handler = Callable[[LedgerSession, InboundMessage], None]
TData = TypeVar("TData", bound=m.MessageData)


def _data(message: InboundMessage, model: type[TData]) -> TData:
    data = message.data
    if not isinstance(data, model):  # the registry pairs them; this guards a wiring mistake
        msg = f"{message.type} carries {type(data).__name__}, expected {model.__name__}"
        raise TypeError(msg)
    return data


def _price(price: m.PriceData | None) -> Price | None:
    return None if price is None else Price(price.amount, price.currency)


def specialization_published(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.SpecializationPublished)
    session.publish_specialization(
        specialization_id=d.specialization_id,
        title=d.title,
        partners=d.partners,
        language=d.language,
        courses=d.courses,
        capstone_course_id=d.capstone_course_id,
        price=_price(d.price),
        policy=Policy(d.policy.refund_window_days, d.policy.capstone_requires_all_courses),
        at=message.time,
    )


def specialization_revised(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.SpecializationRevised)
    session.revise_specialization(
        specialization_id=d.specialization_id,
        courses=d.courses,
        capstone_course_id=d.capstone_course_id,
        price=_price(d.price),
        at=message.time,
    )


def specialization_retired(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.SpecializationRetired)
    session.retire_specialization(specialization_id=d.specialization_id, at=message.time)


def learner_enrolled(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.LearnerEnrolled)
    session.enroll(d.learner_id, d.specialization_id, Intent(d.intent), message.time)


def learner_unenrolled(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.LearnerUnenrolled)
    session.unenroll(d.learner_id, d.specialization_id, message.time)


def learner_intent_changed(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.LearnerIntentChanged)
    session.change_intent(d.learner_id, d.specialization_id, Intent(d.intent), message.time)


def course_graded(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.CourseGraded)
    session.record_grade(d.learner_id, d.course_id, d.grade, d.passed, message.time)


def payment_captured(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.PaymentCaptured)
    session.capture_payment(
        d.learner_id, d.payment_id, d.course_id, d.amount, d.currency, message.time
    )


def refund_requested(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.RefundRequested)
    session.request_refund(d.learner_id, d.payment_id, message.time)


def payment_charged_back(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.PaymentChargedBack)
    session.charge_back(d.learner_id, d.payment_id, message.time)


def aid_granted(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.AidGranted)
    session.grant_aid(d.learner_id, d.course_id, message.time)


def identity_verified(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.IdentityVerified)
    session.verify_identity(d.learner_id, d.method, d.expires_at, message.time)


def identity_rejected(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.IdentityRejected)
    session.reject_identity(d.learner_id, d.reason, message.time)


def identity_revoked(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.IdentityRevoked)
    session.revoke_identity(d.learner_id, d.reason, message.time)


def certificate_revoked(session: LedgerSession, message: InboundMessage) -> None:
    d = _data(message, m.CertificateRevoked)
    session.revoke_certificate(d.learner_id, d.certificate_id, d.reason, message.time)


HANDLERS: dict[str, Handler] = {
    m.SpecializationPublished.TYPE: specialization_published,
    m.SpecializationRevised.TYPE: specialization_revised,
    m.SpecializationRetired.TYPE: specialization_retired,
    m.LearnerEnrolled.TYPE: learner_enrolled,
    m.LearnerUnenrolled.TYPE: learner_unenrolled,
    m.LearnerIntentChanged.TYPE: learner_intent_changed,
    m.CourseGraded.TYPE: course_graded,
    m.PaymentCaptured.TYPE: payment_captured,
    m.RefundRequested.TYPE: refund_requested,
    m.PaymentChargedBack.TYPE: payment_charged_back,
    m.AidGranted.TYPE: aid_granted,
    m.IdentityVerified.TYPE: identity_verified,
    m.IdentityRejected.TYPE: identity_rejected,
    m.IdentityRevoked.TYPE: identity_revoked,
    m.CertificateRevoked.TYPE: certificate_revoked,
}


def handle(session: LedgerSession, message: InboundMessage) -> None:
    """Apply one valid message to the session (raises `LedgerError` if it cannot be recorded)."""
    session.message_type = message.type
    HANDLERS[message.type](session, message)
