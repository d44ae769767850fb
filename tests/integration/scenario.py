"""A small catalog and learner script shared by the integration tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
DS = "jhu-data-science"
DS_COURSES = [f"ds-{n}" for n in range(1, 10)]

PUBLISHED: dict[str, Any] = {
    "specialization_id": DS,
    "title": "Data Science",
    "partners": ["Johns Hopkins University"],
    "language": "en",
    "courses": DS_COURSES,
    "capstone_course_id": "ds-capstone",
}


def enrolled(learner: str, intent: str = "certificate") -> dict[str, Any]:
    return {"learner_id": learner, "specialization_id": DS, "intent": intent}


def graded(learner: str, course: str, grade: str = "0.9", passed: bool = True) -> dict[str, Any]:
    return {"learner_id": learner, "course_id": course, "grade": grade, "passed": passed}


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)
