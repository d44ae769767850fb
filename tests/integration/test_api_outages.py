"""The API while PostgreSQL or Kafka is away, without a restart: every route that needs the
missing service answers 503 saying which, the others answer as ever, and once the service is
back every route answers as before.

These stop and start the services `ledger stack up` manages, so they need the embedded ones.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.settings import Settings
from ledger.stack import kafka, services
from ledger.stack.services import Service

from .helpers import bearer, needs_embedded_services, running_api, staff_token, wait_for
from .routes import API_ROUTES, CONSOLE_PAGES, Route

pytestmark = pytest.mark.integration


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[str]:
    with running_api(settings, tmp_path / "api.log", LEDGER_PUBLIC_RATE_LIMIT="10000/minute") as b:
        yield b


def answers(client: httpx.Client, token: str, session: str) -> dict[str, httpx.Response]:
    """Every route and page, asked with a credential that opens it."""
    found: dict[str, httpx.Response] = {}
    for route in API_ROUTES:
        found[route.path] = route.ask(client, bearer(token))
    client.cookies.set("ledger_session", session)
    for page in CONSOLE_PAGES:
        found[page.path] = page.ask(client)
    client.cookies.clear()
    return found


def check(found: dict[str, httpx.Response], away: str | None) -> list[str]:
    """What differs from what each route should answer with `away` gone (None: all there)."""
    wrong = []
    for route in [*API_ROUTES, *CONSOLE_PAGES]:
        answer = found[route.path]
        if away is not None and away in route.needs:
            if answer.status_code != 503:
                wrong.append(f"{route.path}: {answer.status_code}, not 503")
            elif route in API_ROUTES and route.path != "/readyz":
                detail = answer.json()["detail"]
                named = "PostgreSQL" if away == "postgres" else "Kafka"
                if named.lower() not in detail.lower():
                    wrong.append(f"{route.path}: 503 without naming {named}: {detail}")
        elif answer.status_code not in _allowed(route):
            wrong.append(f"{route.path}: {answer.status_code} {answer.text[:200]}")
    return wrong


def _allowed(route: Route) -> frozenset[int]:
    return route.allowed


def session_of(client: httpx.Client, token: str) -> str:
    answer = client.post("/console/login", data={"token": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    session = answer.cookies["ledger_session"]
    client.cookies.clear()
    return session


def kill_broker(settings: Settings) -> None:
    """The broker killed with `kill -9`: no goodbye to its clients, as in a crash."""
    pid = kafka.running_pid(settings.state_path)
    assert pid is not None, "no broker of `ledger stack up` runs"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: kafka.running_pid(settings.state_path) is None, 30, "the broker to die")


@pytest.mark.parametrize(
    ("away", "how"),
    [(Service.POSTGRES, "stop"), (Service.KAFKA, "stop"), (Service.KAFKA, "kill -9")],
)
def test_every_route_answers_503_while_a_service_is_away_and_recovers_by_itself(
    settings: Settings, api: str, away: Service, how: str
) -> None:
    needs_embedded_services(settings, "stop")
    base = settings.model_copy(update={"database_url": None})  # the embedded server itself
    token = staff_token(settings, f"outage-{away}")
    with httpx.Client(base_url=api, timeout=60) as client:
        session = session_of(client, token)
        assert check(answers(client, token, session), None) == []
        if how == "stop":
            services.down(base, away)
        else:
            kill_broker(base)
        time.sleep(1.1)  # /readyz asks the services at most once a second
        try:
            during = answers(client, token, session)
            assert client.get("/readyz").json()[str(away)] != "ok"
        finally:
            services.up(base, away)
        assert check(during, str(away)) == []
        wait_for(
            lambda: client.get("/readyz").status_code == 200, 120, f"/readyz once {away} is back"
        )
        # A broker that accepts connections may still be electing its partitions' leaders:
        # every route must come back by itself, within a minute.
        deadline = time.monotonic() + 60
        while (wrong := check(answers(client, token, session), None)) and (
            time.monotonic() < deadline
        ):
            time.sleep(1)
        assert wrong == []
