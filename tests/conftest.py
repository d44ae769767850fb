"""Shared by every test tier: the run's header names the services the integration tests use."""

from __future__ import annotations

from ledger.settings import Settings
from ledger.stack import services


def pytest_report_header() -> list[str]:
    settings = Settings.from_env()
    lines = []
    for status in services.status(settings):
        state = "running" if status.running else "NOT RUNNING"
        lines.append(f"ledger {status.service}: {state} at {status.where} ({status.detail})")
    return lines
