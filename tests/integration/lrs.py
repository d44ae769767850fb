"""A real Learning Record Store for the xAPI tests: Ralph (`ralph-malph`, its file-system
backend), in the virtual environment `make lrs` makes, started and stopped by the test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .helpers import REPO, free_port, wait_for

RALPH = REPO / ".venv-ralph" / "bin"
HEADERS = {"X-Experience-API-Version": "1.0.3"}


@dataclass(frozen=True)
class Lrs:
    url: str  # the xAPI base
    username: str
    password: str

    def statements(self) -> list[dict[str, Any]]:
        """Every statement the LRS returns, page after page."""
        found: list[dict[str, Any]] = []
        with httpx.Client(auth=(self.username, self.password), headers=HEADERS) as client:
            page = f"{self.url}/statements?limit=500"
            while page:
                answer = client.get(page, timeout=30)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                found.extend(body["statements"])
                more = body.get("more")
                page = f"{self.url.removesuffix('/xAPI')}{more}" if more else ""
        return found


def _ralph() -> Path:
    python = RALPH / "python"
    if python.exists():
        return python
    message = "Ralph is not installed: run `make lrs` (the xAPI tests need a real LRS)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def running_lrs(directory: Path) -> Iterator[Lrs]:
    """Ralph on a free port, with one user, its statements in `directory`."""
    python = _ralph()
    env = {
        **os.environ,
        "RALPH_APP_DIR": str(directory / "app"),
        "RALPH_RUNSERVER_BACKEND": "fs",
        "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(directory / "data"),
    }
    subprocess.run(
        [
            str(RALPH / "ralph"),
            "auth",
            "-u",
            "ledger",
            "-p",
            "s3cret",
            "-s",
            "all",
            "-M",
            "mailto:ledger@example.org",
            "-w",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    log = (directory / "ralph.log").open("wb")
    process = subprocess.Popen(
        [str(python), str(Path(__file__).with_name("ralph_serve.py")), str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    lrs = Lrs(f"http://127.0.0.1:{port}/xAPI", "ledger", "s3cret")

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/__heartbeat__", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 90, f"Ralph on port {port} ({directory / 'ralph.log'})")
        yield lrs
    finally:
        process.terminate()
        process.wait(30)
        log.close()
