"""Shared by every test tier: the run's header names the services the integration tests use."""

from __future__ import annotations

import os

from hypothesis import settings as hypothesis_settings

from ledger.settings import Settings
from ledger.stack import services


def pytest_report_header() -> list[str]:
    settings = Settings.from_env()
    lines = []
    for status in services.status(settings):
        state = "running" if status.running else "NOT RUNNING"
        lines.append(f"ledger {status.service}: {state} at {status.where} ({status.detail})")
    return lines


# Property tests run 300 examples each in CI (the rulebook issue asks for it), 100 locally.
hypothesis_settings.register_profile("ci", max_examples=300, deadline=None)
hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")
