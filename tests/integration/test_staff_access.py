"""Who may read what: every route of the API and every page of the console against every kind
of credential (none, each role, a revoked token, an expired one), the record of staff reads,
tokens shown once and stored hashed, and the public routes' rate limit. Against a running
`ledger run api` on the real PostgreSQL and Kafka.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.entrypoints import bootstrap
from ledger.entrypoints.staff import tokens
from ledger.entrypoints.staff.roles import Role
from ledger.settings import Settings

from .helpers import bearer, ledger_cli, running_api, services_of, staff_token
from .routes import API_ROUTES, CONSOLE_PAGES, NOBODY, Route

pytestmark = pytest.mark.integration

DEAD = ("none", "revoked", "expired")


@pytest.fixture(scope="module")
def api(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("staff-api") / "api.log"
    with running_api(settings, log, LEDGER_PUBLIC_RATE_LIMIT="100000/minute") as base:
        yield base


def expire(settings: Settings, secret: str) -> None:
    with bootstrap.connect(services_of(settings)) as conn:
        conn.execute(
            "UPDATE ledger_staff_tokens SET expires_at = now() - interval '1 day' "
            "WHERE secret_sha256 = %s",
            (tokens.digest(secret),),
        )


def revoke(settings: Settings, secret: str) -> None:
    with bootstrap.connect(services_of(settings)) as conn:
        token = tokens.authenticate(conn, secret)
        assert tokens.revoke(conn, token.token_id)


def credentials(settings: Settings) -> dict[str, str | None]:
    """One token per role, one revoked and one expired (each holding every role), and none."""
    found: dict[str, str | None] = {r.value: staff_token(settings, f"m-{r}", r) for r in Role}
    found["none"] = None
    found["revoked"] = staff_token(settings, "m-revoked")
    found["expired"] = staff_token(settings, "m-expired")
    return found


def expected(route: Route, who: str) -> set[int]:
    if not route.roles:
        return set(route.allowed)
    if who in DEAD:
        return {401}
    return set(route.allowed) if Role(who) in route.roles else {403}


def test_every_api_route_against_every_credential(settings: Settings, api: str) -> None:
    found = credentials(settings)
    revoke(settings, found["revoked"] or "")
    expire(settings, found["expired"] or "")
    wrong: list[str] = []
    with httpx.Client(base_url=api, timeout=60) as client:
        for who, secret in found.items():
            headers = bearer(secret) if secret else {}
            for route in API_ROUTES:
                answer = route.ask(client, headers)
                if answer.status_code not in expected(route, who):
                    wrong.append(f"{who} {route.method} {route.path}: {answer.status_code}")
                elif answer.status_code == 401:
                    assert answer.headers["www-authenticate"] == "Bearer"
                    assert {"none": "needs a staff token", "revoked": "was revoked"}.get(
                        who, "expired on"
                    ) in answer.json()["detail"]
                elif answer.status_code == 403:
                    role = route.roles[0].value if len(route.roles) == 1 else "staff"
                    assert role in answer.json()["detail"], answer.text
    assert not wrong, "\n".join(wrong)


def signed_in(client: httpx.Client, secret: str) -> str:
    """Sign in through the form; the session cookie."""
    answer = client.post(
        "/console/login", data={"token": secret, "next": "/console"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    cookie = answer.cookies["ledger_session"]
    set_cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    assert secret not in set_cookie  # the cookie names the token, never holds it
    return cookie


def with_session(client: httpx.Client, cookie: str | None) -> httpx.Client:
    """The client, carrying this session's cookie and no other (none if `cookie` is None)."""
    client.cookies.clear()
    if cookie is not None:
        client.cookies.set("ledger_session", cookie)
    return client


def test_every_console_page_against_every_credential(settings: Settings, api: str) -> None:
    found = credentials(settings)
    wrong: list[str] = []
    with httpx.Client(base_url=api, timeout=60) as client:
        sessions = {who: signed_in(client, secret) for who, secret in found.items() if secret}
        revoke(settings, found["revoked"] or "")  # their sessions end with them
        expire(settings, found["expired"] or "")
        refused = client.post("/console/login", data={"token": found["revoked"]})
        assert refused.status_code == 401 and "was revoked" in refused.text
        for who in found:
            for page in CONSOLE_PAGES:
                answer = page.ask(with_session(client, sessions.get(who)))
                if answer.status_code not in expected(page, who):
                    wrong.append(f"{who} {page.path}: {answer.status_code}")
                    continue
                assert answer.headers["content-type"].startswith("text/html"), page.path
                if answer.status_code == 401:
                    assert 'name="token"' in answer.text  # the sign-in form, with the reason
                if answer.status_code == 403:
                    assert "needs the" in answer.text
    assert not wrong, "\n".join(wrong)


def test_a_form_without_the_sessions_form_token_is_refused(settings: Settings, api: str) -> None:
    with httpx.Client(base_url=api, timeout=60) as client:
        cookie = signed_in(client, staff_token(settings, "csrf", Role.OPERATOR))
        forged = with_session(client, cookie).post(
            "/console/rejections/1/retry", data={"csrf": "x"}
        )
        assert forged.status_code == 403 and "form" in forged.text


def test_a_token_is_shown_once_and_only_its_hash_is_kept(settings: Settings, api: str) -> None:
    made = ledger_cli(
        settings, "tokens", "create", "--name", "grace@support", "--role", "support", "--json"
    )
    issued = json.loads(made.stdout)
    secret = issued["token"]
    assert secret.startswith("ldg_") and len(secret) > 40
    assert issued["roles"] == ["support"] and issued["state"] == "live"
    listed = ledger_cli(settings, "tokens", "list", "--json").stdout
    assert issued["token_id"] in listed and secret not in listed
    with bootstrap.connect(services_of(settings)) as conn:
        dump = conn.execute("SELECT t::text FROM ledger_staff_tokens t").fetchall()
        stored = conn.execute(
            "SELECT secret_sha256 FROM ledger_staff_tokens WHERE token_id = %s",
            (issued["token_id"],),
        ).fetchone()
    assert not any(secret in row[0] for row in dump)
    assert stored is not None and bytes(stored[0]) == hashlib.sha256(secret.encode()).digest()
    with httpx.Client(base_url=api, headers=bearer(secret), timeout=30) as client:
        assert client.get(f"/v1/learners/{NOBODY}").status_code == 404
        ledger_cli(settings, "tokens", "revoke", issued["token_id"])
        after = client.get(f"/v1/learners/{NOBODY}")
        assert after.status_code == 401 and "was revoked" in after.json()["detail"]
    again = ledger_cli(settings, "tokens", "revoke", issued["token_id"], check=False)
    assert again.returncode == 4 and "no live token" in again.stderr


def test_every_read_of_a_learners_data_is_recorded_with_who_and_what(
    settings: Settings, api: str, tmp_path: Path
) -> None:
    learner = "read-by-many"
    support = staff_token(settings, "sam@support", Role.SUPPORT)
    finance = staff_token(settings, "fay@finance", Role.FINANCE)
    auditor = staff_token(settings, "al@audit", Role.AUDITOR)
    with httpx.Client(base_url=api, timeout=30) as client:
        client.get(f"/v1/learners/{learner}", headers=bearer(support))
        client.get(f"/v1/learners/{learner}/payments", headers=bearer(finance))
        with_session(client, signed_in(client, support)).get(f"/console/learners/{learner}")
        with_session(client, None)
        ledger_cli(settings, "learner", "show", learner, check=False)
        client.get(f"/v1/learners/{learner}/eligibility/%00", headers=bearer(support))
        client.get(f"/v1/learners/{learner}", headers=bearer(finance))  # the wrong role
        client.get("/v1/learners/%00", headers=bearer(support))  # not an id
        reads = client.get(f"/v1/learners/{learner}/reads", headers=bearer(auditor)).json()
    seen = {(r["reader"], r["via"], r["what"]) for r in reads}
    assert ("sam@support", "api", "GET /v1/learners/{learner_id}") in seen
    assert ("fay@finance", "api", "GET /v1/learners/{learner_id}/payments") in seen
    assert ("sam@support", "console", "GET /console/learners/{learner_id}") in seen
    assert any(via == "cli" and what == "ledger learner show" for _, via, what in seen)
    # The request with a bad specialization id was let in, so it is on record; the one of the
    # wrong role and the one naming no possible learner read nothing and are not.
    assert (
        "sam@support",
        "api",
        "GET /v1/learners/{learner_id}/eligibility/{specialization_id}",
    ) in seen
    assert len(reads) == 5
    assert all(r["read_at"] for r in reads)
    cli = ledger_cli(settings, "audit", "reads", learner, "--json").stdout.splitlines()
    assert len(cli) == 5 and {json.loads(line)["reader"] for line in cli} >= {"sam@support"}


def test_the_access_log_names_the_token_never_the_token_itself(
    settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "api.log"
    secret = staff_token(settings, "logged@support", Role.SUPPORT)
    with running_api(settings, log) as base:
        httpx.get(f"{base}/v1/learners/{NOBODY}", headers=bearer(secret), timeout=30)
        httpx.get(f"{base}/v1/learners/{NOBODY}", headers=bearer(secret + "x"), timeout=30)
        time.sleep(0.5)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "api.request"]
    assert {
        (r["method"], r["route"], r["status"], r["staff"]) for r in requests if r["status"] != 200
    } >= {
        ("GET", "/v1/learners/{learner_id}", 404, "logged@support"),
        ("GET", "/v1/learners/{learner_id}", 401, None),
    }
    assert all(isinstance(r["ms"], float) for r in requests)
    assert secret not in log.read_text() and NOBODY not in log.read_text()


def test_the_public_routes_are_rate_limited_per_client(settings: Settings, tmp_path: Path) -> None:
    limited_api = running_api(settings, tmp_path / "api.log", LEDGER_PUBLIC_RATE_LIMIT="5/second")
    with limited_api as base, httpx.Client(base_url=base, timeout=30) as client:
        statuses = [client.get("/v1/certificates/burst").status_code for _ in range(20)]
        assert statuses.count(404) <= 6 and statuses.count(429) >= 14, statuses
        limited = client.get("/v1/certificates/burst")
        assert limited.status_code == 429
        wait = int(limited.headers["retry-after"])
        assert 1 <= wait <= 2 and "try again in" in limited.json()["detail"]
        time.sleep(wait + 0.2)
        assert client.get("/v1/certificates/burst").status_code == 404  # served again
        assert client.get("/healthz").status_code == 200


def test_hostile_values_in_console_pages_are_a_4xx_page_never_a_500(
    settings: Settings, api: str
) -> None:
    with httpx.Client(base_url=api, timeout=60) as client:
        with_session(client, signed_in(client, staff_token(settings, "hostile")))
        for path in (
            "/console/learners/%00",
            "/console/learners/a%00b/why/ds",
            "/console/learners/ada/why/%00",
            "/console/learners/" + "x" * 5000,
            "/console/learners/ada/history?as_of=yesterday",
            "/console/learners/ada/history?as_of=0001-01-01T00:00:00%2B05:00",
            "/console/rejections/-1",
            "/console/rejections/99999999999999999999999",
            "/console/rejections?reason=%00",
            "/console/search?learner_id=",
            "/console/no-such-page",
            "/certificates/%00",
        ):
            answer = client.get(path)
            assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:300])
            assert answer.headers["content-type"].startswith("text/html"), path
            assert "<h1>" in answer.text, path
