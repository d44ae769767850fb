"""The catalog: a specialization, its curriculum versions and its policy (rules C1 to C3).

Enrollments copy ("pin") a `Curriculum` into the learner's own history, so nothing in a learner's
stream ever has to be re-read from the catalog: a revision changes what new enrollments get and
leaves existing ones exactly as they were (C2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.ids import specialization_aggregate_id
from ledger.errors import CatalogError

MIN_COURSES = 3
MAX_COURSES = 9
DEFAULT_PRICE = Decimal("49.00")
DEFAULT_CURRENCY = "USD"
DEFAULT_REFUND_WINDOW_DAYS = 14


@dataclass(frozen=True)
class Price:
    """The price of one course of a specialization (money is Decimal, never float)."""

    amount: Decimal = DEFAULT_PRICE
    currency: str = DEFAULT_CURRENCY


@dataclass(frozen=True)
class Policy:
    """The per-specialization knobs of the rulebook (C1)."""

    refund_window_days: int = DEFAULT_REFUND_WINDOW_DAYS
    capstone_requires_all_courses: bool = True


@dataclass(frozen=True)
class Curriculum:
    """One version of what a specialization asks for: what an enrollment pins (C2)."""

    version: int
    courses: tuple[str, ...]
    capstone_course_id: str
    price: Price
    policy: Policy


def check_curriculum(courses: tuple[str, ...], capstone_course_id: str, price: Price) -> None:
    """Raise `CatalogError` unless the course list, capstone and price obey C1."""
    if not MIN_COURSES <= len(courses) <= MAX_COURSES:
        raise CatalogError(
            f"a specialization has {MIN_COURSES} to {MAX_COURSES} courses, "
            f"this one lists {len(courses)}: send a course list of that length"
        )
    if len(set(courses)) != len(courses):
        repeated = sorted({c for c in courses if courses.count(c) > 1})
        raise CatalogError(f"courses must be distinct, repeated: {', '.join(repeated)}")
    if not capstone_course_id:
        raise CatalogError("the capstone course id is empty: name the capstone course")
    if capstone_course_id in courses:
        raise CatalogError(
            f"the capstone {capstone_course_id!r} is also in the course list: "
            "list it only as the capstone"
        )
    if price.amount <= 0 or price.amount != price.amount.quantize(Decimal("0.01")):
        raise CatalogError(
            f"price {price.amount} is not a positive amount with at most two decimals"
        )
    if len(price.currency) != 3 or not price.currency.isalpha() or not price.currency.isupper():
        raise CatalogError(f"currency {price.currency!r} is not an ISO 4217 code such as 'USD'")


class Specialization(Aggregate):
    """A specialization of the catalog, with every curriculum version it has had."""

    TOPIC = "ledger.specialization"

    class Created(Aggregate.Created):
        """Unused: a specialization is created by `Published`; kept for the library's topic map."""

        TOPIC = "ledger.specialization.created"

    class Published(Aggregate.Created):
        """The specialization entered the catalog with its first curriculum (C1)."""

        TOPIC = "ledger.specialization.published"
        specialization_id: str
        title: str
        partners: tuple[str, ...]
        language: str
        courses: tuple[str, ...]
        capstone_course_id: str
        price_amount: Decimal
        price_currency: str
        refund_window_days: int
        capstone_requires_all_courses: bool
        at: datetime

    class Revised(Aggregate.Event):
        """The curriculum changed: new enrollments pin this version, old ones keep theirs (C2)."""

        TOPIC = "ledger.specialization.revised"
        courses: tuple[str, ...]
        capstone_course_id: str
        price_amount: Decimal
        price_currency: str
        at: datetime

    class Retired(Aggregate.Event):
        """No new enrollments from now on; existing ones go on (C3)."""

        TOPIC = "ledger.specialization.retired"
        at: datetime

    @staticmethod
    def create_id(specialization_id: str) -> UUID:
        return specialization_aggregate_id(specialization_id)

    @classmethod
    def publish(
        cls,
        *,
        specialization_id: str,
        title: str,
        partners: tuple[str, ...],
        language: str,
        courses: tuple[str, ...],
        capstone_course_id: str,
        price: Price,
        policy: Policy,
        at: datetime,
    ) -> Specialization:
        """Decide C1, then record the publication."""
        if not specialization_id:
            raise CatalogError("the specialization id is empty")
        if not title.strip():
            raise CatalogError(f"specialization {specialization_id!r} has no title")
        if not partners:
            raise CatalogError(
                f"specialization {specialization_id!r} names no partner: list at least one"
            )
        check_curriculum(courses, capstone_course_id, price)
        if policy.refund_window_days < 0:
            raise CatalogError(f"refund_window_days is {policy.refund_window_days}: use 0 or more")
        return cls(
            specialization_id=specialization_id,
            title=title,
            partners=tuple(partners),
            language=language,
            courses=tuple(courses),
            capstone_course_id=capstone_course_id,
            price_amount=price.amount,
            price_currency=price.currency,
            refund_window_days=policy.refund_window_days,
            capstone_requires_all_courses=policy.capstone_requires_all_courses,
            at=at,
        )

    @event(Published)
    def __init__(
        self,
        specialization_id: str,
        title: str,
        partners: tuple[str, ...],
        language: str,
        courses: tuple[str, ...],
        capstone_course_id: str,
        price_amount: Decimal,
        price_currency: str,
        refund_window_days: int,
        capstone_requires_all_courses: bool,
        at: datetime,
    ) -> None:
        self.specialization_id = specialization_id
        self.title = title
        self.partners = tuple(partners)
        self.language = language
        self.policy = Policy(refund_window_days, capstone_requires_all_courses)
        self.versions: list[Curriculum] = [
            Curriculum(
                version=1,
                courses=tuple(courses),
                capstone_course_id=capstone_course_id,
                price=Price(Decimal(price_amount), price_currency),
                policy=self.policy,
            )
        ]
        self.retired_at: datetime | None = None

    @property
    def current(self) -> Curriculum:
        """The newest curriculum: what an enrollment made now pins (C2)."""
        return self.versions[-1]

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None

    def is_same_publication(self, **fields: Any) -> bool:
        """True when a repeated publication carries what was first published (a retry)."""
        first = self.versions[0]
        return (
            fields.get("title") == self.title
            and tuple(fields.get("partners", ())) == self.partners
            and fields.get("language") == self.language
            and tuple(fields.get("courses", ())) == first.courses
            and fields.get("capstone_course_id") == first.capstone_course_id
            and fields.get("price") == first.price
            and fields.get("policy") == first.policy
        )

    def revise(
        self,
        *,
        courses: tuple[str, ...],
        capstone_course_id: str,
        price: Price | None,
        at: datetime,
    ) -> None:
        """Decide C1 for the new curriculum, then record it as the next version (C2)."""
        new_price = price or self.current.price
        check_curriculum(courses, capstone_course_id, new_price)
        self._revised(
            courses=tuple(courses),
            capstone_course_id=capstone_course_id,
            price_amount=new_price.amount,
            price_currency=new_price.currency,
            at=at,
        )

    @event(Revised)
    def _revised(
        self,
        courses: tuple[str, ...],
        capstone_course_id: str,
        price_amount: Decimal,
        price_currency: str,
        at: datetime,
    ) -> None:
        self.versions.append(
            Curriculum(
                version=len(self.versions) + 1,
                courses=tuple(courses),
                capstone_course_id=capstone_course_id,
                price=Price(Decimal(price_amount), price_currency),
                policy=self.policy,
            )
        )

    def retire(self, *, at: datetime) -> None:
        """Record the retirement (C3); retiring twice changes nothing."""
        if self.is_retired:
            return
        self._retired(at=at)

    @event(Retired)
    def _retired(self, at: datetime) -> None:
        self.retired_at = at
