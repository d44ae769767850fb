"""Shared by every test tier: hypothesis profiles, and (for a run with integration tests) a
report line naming the services they use.

The services are looked for only once pytest knows integration tests were collected: a
unit-only run (`make unit`, or `pytest tests/unit`) neither needs nor probes PostgreSQL or Kafka.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings


def pytest_report_collectionfinish(
    config: pytest.Config, start_path: Path, items: list[pytest.Item]
) -> list[str]:
    if not any(item.get_closest_marker("integration") for item in items):
        return []
    from ledger.settings import Settings
    from ledger.stack import services

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
