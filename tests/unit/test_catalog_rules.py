"""C1-C3: what a specialization may be, and how revisions and retirement behave."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from ledger.domain import Price
from ledger.errors import CatalogError

from .helpers import DS_COURSES, T0, published


def test_C1_published_with_defaults() -> None:
    spec = published()
    assert spec.current.version == 1
    assert spec.current.courses == DS_COURSES
    assert spec.current.price == Price(Decimal("49.00"), "USD")
    assert spec.current.policy.refund_window_days == 14
    assert spec.current.policy.capstone_requires_all_courses is True


@pytest.mark.parametrize("count", [3, 9])
def test_C1_three_to_nine_courses_accepted(count: int) -> None:
    assert len(published(courses=DS_COURSES[:count]).current.courses) == count


@pytest.mark.parametrize("count", [2, 10])
def test_C1_fewer_than_three_or_more_than_nine_courses_refused(count: int) -> None:
    courses = tuple(f"c{n}" for n in range(count))
    with pytest.raises(CatalogError, match=f"this one lists {count}"):
        published(courses=courses)


def test_C1_capstone_must_not_be_in_the_course_list() -> None:
    with pytest.raises(CatalogError, match="also in the course list"):
        published(capstone=DS_COURSES[0])


def test_C1_courses_must_be_distinct() -> None:
    with pytest.raises(CatalogError, match="repeated: ds-1"):
        published(courses=("ds-1", "ds-1", "ds-2"))


def test_C2_revision_is_the_next_version_and_keeps_the_first() -> None:
    spec = published()
    spec.revise(
        courses=DS_COURSES[:5],
        capstone_course_id="ds-capstone-2",
        price=None,
        at=T0 + timedelta(days=1),
    )
    assert [v.version for v in spec.versions] == [1, 2]
    assert spec.versions[0].courses == DS_COURSES
    assert spec.current.courses == DS_COURSES[:5]
    assert spec.current.price == spec.versions[0].price


def test_C2_revision_obeys_C1() -> None:
    spec = published()
    with pytest.raises(CatalogError):
        spec.revise(courses=("a", "b"), capstone_course_id="x", price=None, at=T0)
    assert spec.current.version == 1


def test_C3_retire_is_recorded_once() -> None:
    spec = published()
    spec.retire(at=T0 + timedelta(days=3))
    spec.retire(at=T0 + timedelta(days=4))
    assert spec.is_retired
    assert spec.retired_at == T0 + timedelta(days=3)
    assert [type(e).__name__ for e in spec.collect_events()] == ["Published", "Retired"]


def test_C1_at_least_one_partner() -> None:
    from ledger.domain import Policy, Specialization

    with pytest.raises(CatalogError, match="names no partner"):
        Specialization.publish(
            specialization_id="ds",
            title="DS",
            partners=(),
            language="en",
            courses=DS_COURSES,
            capstone_course_id="cap",
            price=Price(),
            policy=Policy(),
            at=T0,
        )
