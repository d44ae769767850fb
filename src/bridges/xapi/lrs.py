"""Sending statements to a Learning Record Store's statements resource (xAPI 1.0.3).

A batch is POSTed whole. An LRS ignores a statement it holds already (the same id and content:
204), refuses one whose id it holds with other content (409), and some refuse a whole batch
that mixes known and new statements (Ralph answers 500): such a batch is sent again one
statement at a time, so each known statement is skipped and each new one kept. Basic auth
comes from `LEDGER_XAPI_USERNAME` / `LEDGER_XAPI_PASSWORD` (never logged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from ledger.errors import LedgerError

HEADERS = {"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}


class LrsError(LedgerError):
    """Raised when the LRS refuses statements for a reason a retry cannot fix."""

    code = "lrs"


@dataclass
class Sent:
    """What became of the statements sent."""

    stored: int = 0
    known: int = 0
    conflicts: list[str] = field(default_factory=list)


class Lrs:
    """The statements resource of one LRS (`url` ends with the xAPI base, e.g. `.../xAPI`)."""

    def __init__(self, url: str, username: str | None, password: str | None) -> None:
        self.url = url.rstrip("/") + "/statements"
        auth = httpx.BasicAuth(username, password) if username and password else None
        self._client = httpx.Client(headers=HEADERS, auth=auth, timeout=30)

    def send(self, statements: list[dict[str, Any]]) -> Sent:
        sent = Sent()
        if not statements:
            return sent
        answer = self._client.post(self.url, json=statements)
        if answer.status_code == 200:
            sent.stored = len(statements)
            return sent
        if answer.status_code == 204:
            sent.known = len(statements)
            return sent
        if answer.status_code in (401, 403):
            raise LrsError(
                f"the LRS refused the credentials ({answer.status_code}): check "
                "LEDGER_XAPI_USERNAME and LEDGER_XAPI_PASSWORD"
            )
        if answer.status_code == 400:
            raise LrsError(f"the LRS refused the statements: {answer.text[:500]}")
        for statement in statements:  # 409, or a batch refused whole: one at a time
            self._one(statement, sent)
        return sent

    def _one(self, statement: dict[str, Any], sent: Sent) -> None:
        answer = self._client.post(self.url, json=[statement])
        if answer.status_code == 200:
            sent.stored += 1
        elif answer.status_code == 204:
            sent.known += 1
        elif answer.status_code == 409:
            sent.conflicts.append(statement["id"])
        else:
            raise LrsError(
                f"the LRS answered {answer.status_code} to statement {statement['id']}: "
                f"{answer.text[:300]}"
            )

    def close(self) -> None:
        self._client.close()
