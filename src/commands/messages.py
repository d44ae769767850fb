"""The `data` of every inbound message type (DESIGN §4), as frozen pydantic models.

These models are the contract: `schemas/` is generated from them. They only check shape
(types, ranges, required fields); whether a message is allowed is the rulebook's business.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from commands.limits import BusinessTime, Text

NonEmpty = Annotated[Text, Field(min_length=1, max_length=200)]
CourseId = Annotated[Text, Field(min_length=1, max_length=100)]
Amount = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
#: A grade: 0 to 1, with at most 20 decimals (a float from JSON has 17 at most).
Grade = Annotated[Decimal, Field(ge=0, le=1, max_digits=21, decimal_places=20)]


class MessageData(BaseModel):
    """Base of every inbound `data` model: immutable, unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    #: The CloudEvent `type` this model is the data of.
    TYPE: ClassVar[str] = ""

    def subject(self) -> str:
        """What the CloudEvent `subject` must be: the learner id, or the specialization id."""
        raise NotImplementedError


class PriceData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    amount: Amount = Decimal("49.00")
    currency: Currency = "USD"


class PolicyData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    refund_window_days: int = Field(default=14, ge=0, le=3650)
    capstone_requires_all_courses: bool = True


class CatalogData(MessageData):
    specialization_id: NonEmpty

    def subject(self) -> str:
        return self.specialization_id


class LearnerData(MessageData):
    learner_id: NonEmpty

    def subject(self) -> str:
        return self.learner_id


class SpecializationPublished(CatalogData):
    TYPE: ClassVar[str] = "ledger.specialization.published.v1"
    title: NonEmpty
    partners: tuple[NonEmpty, ...] = Field(min_length=1)
    language: NonEmpty
    courses: tuple[CourseId, ...] = Field(min_length=3, max_length=9)
    capstone_course_id: CourseId
    price: PriceData = PriceData()
    policy: PolicyData = PolicyData()


class SpecializationRevised(CatalogData):
    TYPE: ClassVar[str] = "ledger.specialization.revised.v1"
    courses: tuple[CourseId, ...] = Field(min_length=3, max_length=9)
    capstone_course_id: CourseId
    price: PriceData | None = None


class SpecializationRetired(CatalogData):
    TYPE: ClassVar[str] = "ledger.specialization.retired.v1"


class LearnerEnrolled(LearnerData):
    TYPE: ClassVar[str] = "ledger.learner.enrolled.v1"
    specialization_id: NonEmpty
    intent: Literal["certificate", "audit"]


class LearnerUnenrolled(LearnerData):
    TYPE: ClassVar[str] = "ledger.learner.unenrolled.v1"
    specialization_id: NonEmpty


class LearnerIntentChanged(LearnerData):
    TYPE: ClassVar[str] = "ledger.learner.intent_changed.v1"
    specialization_id: NonEmpty
    intent: Literal["certificate", "audit"]


class CourseGraded(LearnerData):
    TYPE: ClassVar[str] = "ledger.course.graded.v1"
    course_id: CourseId
    grade: Grade
    passed: bool


class PaymentCaptured(LearnerData):
    TYPE: ClassVar[str] = "ledger.payment.captured.v1"
    payment_id: NonEmpty
    course_id: CourseId
    amount: Amount
    currency: Currency


class RefundRequested(LearnerData):
    TYPE: ClassVar[str] = "ledger.payment.refund_requested.v1"
    payment_id: NonEmpty


class PaymentChargedBack(LearnerData):
    TYPE: ClassVar[str] = "ledger.payment.charged_back.v1"
    payment_id: NonEmpty


class AidGranted(LearnerData):
    TYPE: ClassVar[str] = "ledger.aid.granted.v1"
    course_id: CourseId


class IdentityVerified(LearnerData):
    TYPE: ClassVar[str] = "ledger.identity.verified.v1"
    method: NonEmpty
    expires_at: BusinessTime | None = None


class IdentityRejected(LearnerData):
    TYPE: ClassVar[str] = "ledger.identity.rejected.v1"
    reason: NonEmpty


class IdentityRevoked(LearnerData):
    TYPE: ClassVar[str] = "ledger.identity.revoked.v1"
    reason: NonEmpty


class CertificateRevoked(LearnerData):
    TYPE: ClassVar[str] = "ledger.certificate.revoked.v1"
    certificate_id: NonEmpty
    reason: NonEmpty


#: Every inbound type of the contract (DESIGN §4), by CloudEvent `type`.
MESSAGE_TYPES: dict[str, type[MessageData]] = {
    model.TYPE: model
    for model in (
        SpecializationPublished,
        SpecializationRevised,
        SpecializationRetired,
        LearnerEnrolled,
        LearnerUnenrolled,
        LearnerIntentChanged,
        CourseGraded,
        PaymentCaptured,
        RefundRequested,
        PaymentChargedBack,
        AidGranted,
        IdentityVerified,
        IdentityRejected,
        IdentityRevoked,
        CertificateRevoked,
    )
}
