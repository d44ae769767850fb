"""The `Ledger` command layer, in memory: sessions, idempotent catalog, errors, replay."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.domain import Learner, Policy, Price
from ledger.domain.learner_state import Intent
from ledger.errors import SpecializationExistsError, UnknownSpecializationError

from .helpers import DS_COURSES, T0

CATALOG = {
    "specialization_id": "ds",
    "title": "Data Science",
    "partners": ("Johns Hopkins University",),
    "language": "en",
    "courses": DS_COURSES,
    "capstone_course_id": "ds-capstone",
    "at": T0,
}


def test_a_session_commits_many_commands_in_one_save(ledger: Ledger) -> None:
    with ledger.session() as session:
        session.publish_specialization(**CATALOG)
        session.enroll("ada", "ds", Intent.CERTIFICATE, T0 + timedelta(hours=1))
        session.record_grade("ada", "ds-1", Decimal("0.8"), True, T0 + timedelta(days=3))
    learner = ledger.get_learner("ada")
    assert learner is not None
    assert learner.version == 3  # registered, enrolled, graded
    assert learner.results["ds-1"].latest_grade == Decimal("0.8")


def test_catalog_publication_repeated_unchanged_is_a_no_op(ledger: Ledger) -> None:
    ledger.publish_specialization(**CATALOG)
    ledger.publish_specialization(**{**CATALOG, "at": T0 + timedelta(days=1)})
    spec = ledger.get_specialization("ds")
    assert spec is not None
    assert spec.version == 1


def test_catalog_publication_with_other_content_is_an_error(ledger: Ledger) -> None:
    ledger.publish_specialization(**CATALOG)
    with pytest.raises(SpecializationExistsError, match="revised"):
        ledger.publish_specialization(**{**CATALOG, "title": "Other"})


def test_revising_an_unpublished_specialization_is_an_error(ledger: Ledger) -> None:
    with pytest.raises(UnknownSpecializationError, match="never published"), ledger.session() as s:
        s.revise_specialization(
            specialization_id="nope",
            courses=DS_COURSES[:3],
            capstone_course_id="x",
            price=None,
            at=T0,
        )


def test_a_learner_first_named_by_a_grade_exists(ledger: Ledger) -> None:
    ledger.record_grade("grace", "ds-4", Decimal("0.3"), False, T0)
    learner = ledger.get_learner("grace")
    assert learner is not None
    assert learner.registered_at == T0
    assert not learner.is_passed("ds-4")


commands = st.lists(
    st.one_of(
        st.tuples(
            st.just("enroll"), st.sampled_from(["ds", "other"]), st.sampled_from(list(Intent))
        ),
        st.tuples(st.just("unenroll"), st.sampled_from(["ds", "other"]), st.none()),
        st.tuples(st.just("intent"), st.just("ds"), st.sampled_from(list(Intent))),
        st.tuples(st.just("grade"), st.sampled_from(DS_COURSES), st.booleans()),
    ),
    max_size=25,
)


@given(commands)
def test_a_learner_rebuilt_from_its_stored_events_equals_the_live_one(
    script: list[tuple[str, str, object]],
) -> None:
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        ledger.publish_specialization(**CATALOG, price=Price(), policy=Policy())
        with ledger.session() as session:
            live = session.learner("ada", T0)
            for step, (kind, target, arg) in enumerate(script):
                at = T0 + timedelta(hours=step)
                if kind == "enroll":
                    assert isinstance(arg, Intent)
                    session.enroll("ada", target, arg, at)
                elif kind == "unenroll":
                    session.unenroll("ada", target, at)
                elif kind == "intent":
                    assert isinstance(arg, Intent)
                    session.change_intent("ada", target, arg, at)
                else:
                    session.record_grade("ada", target, Decimal("0.75"), bool(arg), at)
        rebuilt = ledger.get_learner("ada")
        assert isinstance(rebuilt, Learner)
        assert rebuilt.version == live.version
        assert rebuilt.enrollments == live.enrollments
        assert rebuilt.past_enrollments == live.past_enrollments
        assert rebuilt.results == live.results
    finally:
        ledger.close()
