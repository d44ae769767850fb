"""Rendering the console's pages: Jinja2 templates beside this module, every asset served by
the app itself (`/console/static`), no script needed to read anything.

Every page is sent with headers that keep it to itself: a content security policy allowing
only the app's own stylesheet and images (no script at all, no frames), no sniffing, no
referrer beyond the site. The words of "why no certificate yet" and of every "no" are the ones
the CLI prints (`ledger.entrypoints.views`, `ledger.domain.reasons`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from ledger.domain.reasons import in_words
from ledger.entrypoints.staff.roles import Role
from ledger.entrypoints.views import eligibility_verdict
from ledger.entrypoints.web.sessions import COOKIE, Sessions

HERE = Path(__file__).parent
STATIC = HERE / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment


def _day(moment: datetime | None) -> str:
    return "" if moment is None else f"{_utc(moment):%Y-%m-%d}"


def _moment(moment: datetime | None) -> str:
    return "" if moment is None else f"{_utc(moment):%Y-%m-%d %H:%M} UTC"


def _part(value: str) -> str:
    """A value as one segment of a URL's path."""
    return quote(value, safe="")


class Pages:
    """The console's templates, with what every page shows (who is signed in, their roles)."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.templates = Jinja2Templates(directory=HERE / "templates")
        env = self.templates.env
        env.autoescape = True
        env.trim_blocks = True
        env.lstrip_blocks = True
        env.filters["day"] = _day
        env.filters["moment"] = _moment
        env.filters["in_words"] = in_words
        env.filters["part"] = _part
        env.globals["Role"] = Role
        env.globals["verdict"] = eligibility_verdict

    def render(
        self,
        request: Request,
        template: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """The page `template` with `context`, the signed-in member of staff (if any) and the
        session's form token."""
        cookie = request.cookies.get(COOKIE)
        access = context.get("access")
        context.setdefault("staff", access.staff if access is not None else None)
        context["csrf"] = self.sessions.csrf_token(cookie) if cookie and access else ""
        response = self.templates.TemplateResponse(request, template, context, status_code=status)
        response.headers.update({**SECURITY_HEADERS, **(headers or {})})
        return response

    def sign_in(
        self, request: Request, message: str | None = None, status: int = 200
    ) -> HTMLResponse:
        """The sign-in form; after signing in, back to the page asked for."""
        wanted = request.url.path
        if request.url.query:
            wanted += "?" + request.url.query
        if not wanted.startswith("/console") or wanted.startswith("/console/login"):
            wanted = "/console"
        return self.render(request, "login.html", status, message=message, next=wanted)

    def problem(
        self,
        request: Request,
        status: int,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        return self.render(
            request, "problem.html", status, headers=headers, title=title, detail=detail
        )
