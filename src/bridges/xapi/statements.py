"""Ledger events as xAPI 1.0.3 statements: pure, deterministic.

| ledger event | verb | object |
|---|---|---|
| `learner.enrolled` | ADL `registered` | the specialization |
| `learner.unenrolled` | `unregistered` (xAPI registry) | the specialization |
| `learner.course_graded`, passed | ADL `passed` (result: success, scaled score) | the course |
| `learner.course_certified` | `earned` (xAPI registry) | the course |
| `learner.specialization_certified` | `earned` | the specialization |
| `learner.certificate_revoked` | ADL `voided`, of the `earned` statement | that statement |

Every statement's id is a UUID derived from what it says (the event's identity; for `earned`,
the certificate's), so the same event always gives the same statement and an LRS that already
holds it ignores it. The learner is an account on the ledger (`homePage` and their ledger id),
nothing personal; the statement's `timestamp` is the event's business time.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from projections.events import LedgerEvent

#: The namespace statement ids are derived in.
NAMESPACE = uuid.UUID("6a1f9d3e-4b7c-5e2a-9c8d-0f1e2d3c4b5a")
VERSION = "1.0.3"

ADL = "http://adlnet.gov/expapi/verbs/"
REGISTRY = "http://id.tincanapi.com/verb/"
VERBS = {
    "registered": ADL + "registered",
    "unregistered": REGISTRY + "unregistered",
    "passed": ADL + "passed",
    "earned": REGISTRY + "earned",
    "voided": ADL + "voided",
}
COURSE_TYPE = "http://adlnet.gov/expapi/activities/course"
#: Handled event kinds: what the follower and the export look at.
KINDS = frozenset(
    {
        "ledger.learner.enrolled",
        "ledger.learner.unenrolled",
        "ledger.learner.course_graded",
        "ledger.learner.course_certified",
        "ledger.learner.specialization_certified",
        "ledger.learner.certificate_revoked",
    }
)


def statement_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


def earned_id(certificate_id: str) -> str:
    """The `earned` statement of a certificate: what its revocation voids."""
    return statement_id("earned", certificate_id)


class Statements:
    """Statements about the learners of the ledger at `home` (its public address)."""

    def __init__(self, home: str) -> None:
        self.home = home.rstrip("/")

    def _actor(self, learner_id: str) -> dict[str, Any]:
        return {"objectType": "Agent", "account": {"homePage": self.home, "name": learner_id}}

    def _activity(self, kind: str, ident: str, name: str) -> dict[str, Any]:
        kinds = "specializations" if kind == "specialization" else "courses"
        activity_type = COURSE_TYPE if kind == "course" else f"{self.home}/xapi/specialization"
        return {
            "objectType": "Activity",
            "id": f"{self.home}/activities/{kinds}/{quote(ident, safe='')}",
            "definition": {"type": activity_type, "name": {"en-US": name}},
        }

    def _statement(
        self, ident: str, event: LedgerEvent, verb: str, obj: dict[str, Any], **more: Any
    ) -> dict[str, Any]:
        return {
            "id": ident,
            "actor": self._actor(event.subject),
            "verb": {"id": VERBS[verb], "display": {"en-US": verb}},
            "object": obj,
            "timestamp": event.time.isoformat(),
            "context": {
                "platform": "enrollment ledger",
                "extensions": {
                    f"{self.home}/xapi/ledger-event": f"{event.aggregate_id}:{event.version}"
                },
            },
            **more,
        }

    def of(self, event: LedgerEvent) -> dict[str, Any] | None:
        """The statement an event makes, or None if it means nothing to learning analytics."""
        kind, d = event.kind, event.data
        ident = statement_id(event.aggregate_id, str(event.version))
        if kind in ("ledger.learner.enrolled", "ledger.learner.unenrolled"):
            spec = d["specialization_id"]
            verb = (
                "registered" if kind.endswith("enrolled") and "un" not in kind else "unregistered"
            )
            obj = self._activity("specialization", spec, f"Specialization {spec}")
            return self._statement(ident, event, verb, obj)
        if kind == "ledger.learner.course_graded":
            if not d.get("passed"):
                return None
            obj = self._activity("course", d["course_id"], f"Course {d['course_id']}")
            result = {"success": True, "score": {"scaled": float(d["grade"])}}
            return self._statement(ident, event, "passed", obj, result=result)
        if kind in ("ledger.learner.course_certified", "ledger.learner.specialization_certified"):
            course = kind == "ledger.learner.course_certified"
            subject = d["course_id"] if course else d["specialization_id"]
            what = "course" if course else "specialization"
            obj = self._activity(what, subject, f"{what.capitalize()} {subject}")
            statement = self._statement(earned_id(d["certificate_id"]), event, "earned", obj)
            statement["context"]["extensions"][f"{self.home}/xapi/certificate"] = {
                "certificate_id": d["certificate_id"],
                "verification_code": d["verification_code"],
                "verify": f"{self.home}/certificates/{d['verification_code']}",
            }
            return statement
        if kind == "ledger.learner.certificate_revoked":
            obj = {"objectType": "StatementRef", "id": earned_id(d["certificate_id"])}
            return self._statement(ident, event, "voided", obj)
        return None
