"""A small catalog and learner script shared by the integration tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..scenarios import DS, DS_COURSES, T0, catalog_data

__all__ = ["DS", "DS_COURSES", "PUBLISHED", "T0", "at", "enrolled", "graded"]

PUBLISHED: dict[str, Any] = catalog_data(DS)


def enrolled(learner: str, intent: str = "certificate") -> dict[str, Any]:
    return {"learner_id": learner, "specialization_id": DS, "intent": intent}


def graded(learner: str, course: str, grade: str = "0.9", passed: bool = True) -> dict[str, Any]:
    return {"learner_id": learner, "course_id": course, "grade": grade, "passed": passed}


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)
