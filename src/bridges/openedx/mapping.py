"""The mapping file: which Open edX course runs are which of the ledger's courses (and which
specialization an enrollment in the run enrolls into), and how Open edX users are named.

A TOML file, checked whole when the bridge starts; every bad entry is reported, each in one
line naming it, and the bridge does not start until the file is right:

    [learners]
    prefix = "openedx-"          # a learner's id: the prefix and the Open edX user id

    [learners.users]             # or named one by one (wins over the prefix)
    "42" = "learner-0042"

    [courses."course-v1:JHUx+DS.1+2026"]
    course = "ds-1"
    specialization = "jhu-data-science"   # an enrollment in this run enrolls in it

    [unmapped]
    courses = "reject"           # or "skip": events of runs not listed are dropped, counted

No personal data is ever read from an Open edX event: the learner is named from the user's
numeric id alone, never their username, e-mail or name.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.errors import ConfigurationError


class MappingError(ConfigurationError):
    """Raised when the mapping file cannot be read or says something the bridge cannot use;
    the message lists every bad entry."""


@dataclass(frozen=True)
class CourseRun:
    """What one Open edX course run is to the ledger."""

    course: str
    specialization: str | None = None


@dataclass(frozen=True)
class Mapping:
    """The whole mapping, checked."""

    courses: dict[str, CourseRun] = field(default_factory=dict)
    learner_prefix: str = "openedx-"
    users: dict[str, str] = field(default_factory=dict)
    skip_unmapped: bool = False

    def learner_id(self, user_id: int) -> str:
        """The ledger's id of an Open edX user: as listed, or the prefix and the user id."""
        return self.users.get(str(user_id), f"{self.learner_prefix}{user_id}")


_ID_LIMIT = 200


def _id(value: object, where: str, problems: list[str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: must be a non-empty string, not {value!r}")
        return None
    if len(value) > _ID_LIMIT or "\x00" in value:
        problems.append(f"{where}: {value[:40]!r}... is not an id the ledger can keep")
        return None
    return value


def _courses(table: object, problems: list[str]) -> dict[str, CourseRun]:
    if not isinstance(table, dict):
        problems.append("[courses]: must be a table of course runs")
        return {}
    runs: dict[str, CourseRun] = {}
    for key, entry in table.items():
        where = f"courses.{key!r}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a table with `course` (and `specialization`)")
            continue
        unknown = set(entry) - {"course", "specialization"}
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        course = _id(entry.get("course"), f"{where}.course", problems)
        specialization = entry.get("specialization")
        if specialization is not None:
            specialization = _id(specialization, f"{where}.specialization", problems)
        if course is not None:
            runs[key] = CourseRun(course, specialization)
    return runs


def _learners(table: object, problems: list[str]) -> tuple[str, dict[str, str]]:
    if not isinstance(table, dict):
        problems.append("[learners]: must be a table")
        return "openedx-", {}
    prefix = table.get("prefix", "openedx-")
    if not isinstance(prefix, str) or len(prefix) > 100:
        problems.append(
            f"learners.prefix: must be a string of 100 characters or fewer, not {prefix!r}"
        )
        prefix = "openedx-"
    users: dict[str, str] = {}
    listed = table.get("users", {})
    if not isinstance(listed, dict):
        problems.append("learners.users: must be a table of Open edX user id = learner id")
        listed = {}
    for user, learner in listed.items():
        if not str(user).isdigit():
            problems.append(f"learners.users.{user!r}: an Open edX user id is a number")
            continue
        found = _id(learner, f"learners.users.{user!r}", problems)
        if found is not None:
            users[str(int(user))] = found
    return prefix, users


def parse_mapping(document: dict[str, Any]) -> Mapping:
    """The mapping a parsed TOML document describes; `MappingError` listing every problem."""
    problems: list[str] = []
    unknown = set(document) - {"courses", "learners", "unmapped"}
    if unknown:
        problems.append(f"unknown table(s): {', '.join(sorted(unknown))}")
    courses = _courses(document.get("courses", {}), problems)
    prefix, users = _learners(document.get("learners", {}), problems)
    unmapped = document.get("unmapped", {})
    policy = unmapped.get("courses", "reject") if isinstance(unmapped, dict) else None
    if policy not in ("reject", "skip"):
        problems.append(f'unmapped.courses: must be "reject" or "skip", not {policy!r}')
    if not courses and not problems:
        problems.append("[courses]: no course run is mapped: the bridge would translate nothing")
    if problems:
        raise MappingError("the Open edX mapping is not usable:\n  " + "\n  ".join(problems))
    return Mapping(courses, prefix, users, policy == "skip")


def load_mapping(path: Path) -> Mapping:
    """Read and check the mapping file."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise MappingError(f"the Open edX mapping {path} cannot be read: {error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise MappingError(f"the Open edX mapping {path} is not TOML: {error}") from None
    return parse_mapping(document)
