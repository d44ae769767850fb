"""Learner progress: "where is this learner in each specialization they enrolled in?"

Per learner and enrollment: the curriculum version pinned, intent, whether the enrollment is
active, each pinned course's state and the capstone's, and the percentage complete. Course
results are kept per learner (not per enrollment) because a course shared by two
specializations counts for both. Specialization titles come from the catalog events.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import Connection, Cursor
from pydantic import BaseModel, ConfigDict

from projections.events import LedgerEvent

NAME = "learner_progress"

DDL = """
CREATE TABLE IF NOT EXISTS lp_specializations (
    specialization_id text PRIMARY KEY,
    title text NOT NULL,
    partners text[] NOT NULL,
    language text NOT NULL,
    retired_at timestamptz
);
CREATE TABLE IF NOT EXISTS lp_learners (
    learner_id text PRIMARY KEY,
    registered_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    events bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS lp_enrollments (
    learner_id text NOT NULL,
    specialization_id text NOT NULL,
    curriculum_version int NOT NULL,
    intent text NOT NULL,
    courses text[] NOT NULL,
    capstone_course_id text NOT NULL,
    enrolled_at timestamptz NOT NULL,
    ended_at timestamptz,
    PRIMARY KEY (learner_id, specialization_id)
);
CREATE TABLE IF NOT EXISTS lp_course_results (
    learner_id text NOT NULL,
    course_id text NOT NULL,
    grade numeric NOT NULL,
    passed boolean NOT NULL,
    graded_at timestamptz NOT NULL,
    PRIMARY KEY (learner_id, course_id)
);
CREATE TABLE IF NOT EXISTS lp_refusals (
    learner_id text NOT NULL,
    version bigint NOT NULL,
    at timestamptz NOT NULL,
    request text NOT NULL,
    subject text NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL,
    PRIMARY KEY (learner_id, version)
);
"""

Cur = Cursor[tuple[Any, ...]]


def _touch(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "UPDATE lp_learners SET updated_at = greatest(updated_at, %s), events = events + 1 "
        "WHERE learner_id = %s",
        (event.time, event.subject),
    )


def on_specialization_published(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    cur.execute(
        "INSERT INTO lp_specializations (specialization_id, title, partners, language) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (specialization_id) DO UPDATE SET "
        "title = EXCLUDED.title, partners = EXCLUDED.partners, language = EXCLUDED.language",
        (d["specialization_id"], d["title"], list(d["partners"]), d["language"]),
    )


def on_specialization_retired(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "UPDATE lp_specializations SET retired_at = %s WHERE specialization_id = %s",
        (event.time, event.subject),
    )


def on_registered(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "INSERT INTO lp_learners (learner_id, registered_at, updated_at, events) "
        "VALUES (%s, %s, %s, 1) ON CONFLICT (learner_id) DO NOTHING",
        (event.subject, event.time, event.time),
    )


def on_enrolled(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    cur.execute(
        "INSERT INTO lp_enrollments (learner_id, specialization_id, curriculum_version, intent,"
        " courses, capstone_course_id, enrolled_at, ended_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, NULL) "
        "ON CONFLICT (learner_id, specialization_id) DO UPDATE SET "
        "curriculum_version = EXCLUDED.curriculum_version, intent = EXCLUDED.intent, "
        "courses = EXCLUDED.courses, capstone_course_id = EXCLUDED.capstone_course_id, "
        "enrolled_at = EXCLUDED.enrolled_at, ended_at = NULL",
        (
            event.subject,
            d["specialization_id"],
            d["curriculum_version"],
            d["intent"],
            list(d["courses"]),
            d["capstone_course_id"],
            event.time,
        ),
    )
    _touch(cur, event)


def on_unenrolled(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "UPDATE lp_enrollments SET ended_at = %s WHERE learner_id = %s AND specialization_id = %s",
        (event.time, event.subject, event.data["specialization_id"]),
    )
    _touch(cur, event)


def on_intent_changed(cur: Cur, event: LedgerEvent) -> None:
    cur.execute(
        "UPDATE lp_enrollments SET intent = %s WHERE learner_id = %s AND specialization_id = %s",
        (event.data["intent"], event.subject, event.data["specialization_id"]),
    )
    _touch(cur, event)


def on_course_graded(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    cur.execute(
        "INSERT INTO lp_course_results (learner_id, course_id, grade, passed, graded_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (learner_id, course_id) DO UPDATE SET "
        "grade = EXCLUDED.grade, passed = EXCLUDED.passed, graded_at = EXCLUDED.graded_at",
        (event.subject, d["course_id"], Decimal(d["grade"]), d["passed"], event.time),
    )
    _touch(cur, event)


def on_request_refused(cur: Cur, event: LedgerEvent) -> None:
    d = event.data
    cur.execute(
        "INSERT INTO lp_refusals (learner_id, version, at, request, subject, reason, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            event.subject,
            event.version,
            event.time,
            d["request"],
            d["subject"],
            d["reason"],
            d["detail"],
        ),
    )
    _touch(cur, event)


HANDLERS = {
    "ledger.specialization.published": on_specialization_published,
    "ledger.specialization.retired": on_specialization_retired,
    "ledger.learner.registered": on_registered,
    "ledger.learner.enrolled": on_enrolled,
    "ledger.learner.unenrolled": on_unenrolled,
    "ledger.learner.intent_changed": on_intent_changed,
    "ledger.learner.course_graded": on_course_graded,
    "ledger.learner.request_refused": on_request_refused,
}


def apply(cur: Cur, event: LedgerEvent) -> None:
    """Apply one event; events this model does not need are ignored."""
    handler = HANDLERS.get(event.kind)
    if handler is not None:
        handler(cur, event)


# Queries


class CourseState(BaseModel):
    model_config = ConfigDict(frozen=True)
    course_id: str
    is_capstone: bool
    graded: bool
    passed: bool
    grade: Decimal | None
    graded_at: datetime | None


class EnrollmentProgress(BaseModel):
    model_config = ConfigDict(frozen=True)
    specialization_id: str
    title: str
    partners: list[str]
    curriculum_version: int
    intent: str
    active: bool
    enrolled_at: datetime
    ended_at: datetime | None
    courses: list[CourseState]
    courses_passed: int
    courses_total: int
    percent_complete: float


class Refusal(BaseModel):
    model_config = ConfigDict(frozen=True)
    at: datetime
    request: str
    subject: str
    reason: str
    detail: str


class LearnerProgress(BaseModel):
    """The answer to `ledger learner show`."""

    model_config = ConfigDict(frozen=True)
    learner_id: str
    registered_at: datetime
    updated_at: datetime
    events: int
    enrollments: list[EnrollmentProgress]
    refusals: list[Refusal]


def learner_progress(conn: Connection[Any], learner_id: str) -> LearnerProgress | None:
    """Everything this model knows about one learner, or None if it has not seen them."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT registered_at, updated_at, events FROM lp_learners WHERE learner_id = %s",
            (learner_id,),
        )
        learner = cur.fetchone()
        if learner is None:
            return None
        cur.execute(
            "SELECT course_id, grade, passed, graded_at FROM lp_course_results "
            "WHERE learner_id = %s",
            (learner_id,),
        )
        results = {row[0]: row for row in cur.fetchall()}
        cur.execute(
            "SELECT e.specialization_id, coalesce(s.title, e.specialization_id),"
            " coalesce(s.partners, '{}'), e.curriculum_version, e.intent, e.courses,"
            " e.capstone_course_id, e.enrolled_at, e.ended_at "
            "FROM lp_enrollments e LEFT JOIN lp_specializations s USING (specialization_id) "
            "WHERE e.learner_id = %s ORDER BY e.enrolled_at, e.specialization_id",
            (learner_id,),
        )
        enrollments = []
        for (
            spec_id,
            title,
            partners,
            version,
            intent,
            courses,
            capstone,
            since,
            ended,
        ) in cur.fetchall():
            states = []
            for course_id in [*courses, capstone]:
                result = results.get(course_id)
                states.append(
                    CourseState(
                        course_id=course_id,
                        is_capstone=course_id == capstone,
                        graded=result is not None,
                        passed=bool(result and result[2]),
                        grade=result[1] if result else None,
                        graded_at=result[3] if result else None,
                    )
                )
            passed = sum(1 for s in states if s.passed)
            enrollments.append(
                EnrollmentProgress(
                    specialization_id=spec_id,
                    title=title,
                    partners=list(partners),
                    curriculum_version=version,
                    intent=intent,
                    active=ended is None,
                    enrolled_at=since,
                    ended_at=ended,
                    courses=states,
                    courses_passed=passed,
                    courses_total=len(states),
                    percent_complete=round(100.0 * passed / len(states), 1),
                )
            )
        cur.execute(
            "SELECT at, request, subject, reason, detail FROM lp_refusals "
            "WHERE learner_id = %s ORDER BY version",
            (learner_id,),
        )
        refusals = [
            Refusal(at=a, request=r, subject=s, reason=why, detail=d)
            for a, r, s, why, d in cur.fetchall()
        ]
    return LearnerProgress(
        learner_id=learner_id,
        registered_at=learner[0],
        updated_at=learner[1],
        events=learner[2],
        enrollments=enrollments,
        refusals=refusals,
    )


def learner_ids(conn: Connection[Any], limit: int = 100) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT learner_id FROM lp_learners ORDER BY learner_id LIMIT %s", (limit,))
        return [row[0] for row in cur.fetchall()]
