"""Integration tests run against the real PostgreSQL and Kafka that `ledger stack up` starts.

Each test session gets its own database and its own topic prefix on those services, so runs
never see each other's data. When the services are missing the tests fail under `CI=true`
(a green run must mean they ran) and skip, saying why, on a developer's machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.settings import Settings
from ledger.stack import services

from .helpers import Publisher, bearer, fresh_settings, running_api, staff_token


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    settings = Settings.from_env()
    missing = [s for s in services.status(settings) if not s.running]
    if missing:
        names = ", ".join(str(s.service) for s in missing)
        message = f"{names} not running: run `ledger stack up` (or `make test`) first"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return settings


@pytest.fixture(scope="session")
def settings(base_settings: Settings) -> Iterator[Settings]:
    """A fresh database and fresh topics shared by the session's tests."""
    with fresh_settings(base_settings) as session_settings:
        yield session_settings


@pytest.fixture
def own_settings(base_settings: Settings) -> Iterator[Settings]:
    """A fresh database and fresh topics for one test that needs to see only its own data."""
    with fresh_settings(base_settings) as test_settings:
        yield test_settings


@pytest.fixture
def publisher(settings: Settings) -> Iterator[Publisher]:
    p = Publisher(settings)
    yield p
    p.close()


@pytest.fixture(scope="session")
def staff(settings: Settings) -> dict[str, str]:
    """Headers carrying a token that holds every staff role: for tests of what the API
    answers, not of who may ask (`test_staff_access` tests that)."""
    return bearer(staff_token(settings, "integration-tests"))


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`ledger run api` on the session's database and topics; its base URL."""
    with running_api(settings, tmp_path / "api.log") as base:
        yield base
