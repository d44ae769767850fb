"""`ledger bench queries`, over HTTP: the support queries as staff meet them, through `ledger
run api` with a token (the JSON API) and a signed-in session (the console's pages), beside the
bare HTTP round trip of `/healthz` measured in the same run (the floor any route stands on).

Each request carries everything a production request does: the token checked, the read
recorded, the answer validated and serialized (or the page rendered), one log line written.
The API runs in its own process, as in production; its public rate limit is lifted for the
run, since one client asks far faster than any person would.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx

from ledger.entrypoints.bench.common import Latency, Scratch, latency_of, worker_env
from ledger.entrypoints.bench.worker_memory import ProcessMemory, peak_resident_mb
from ledger.entrypoints.staff import tokens
from ledger.entrypoints.staff.roles import Role
from ledger.errors import LedgerError

#: The floor every route stands on: the bare round trip of the cheapest route.
HTTP_ROUND_TRIP = "HTTP round trip: GET /healthz"
#: The p99 the API (with a token) and the console's learner page are asked to stay under.
API_TARGET_MS = 10.0
PAGE_TARGET_MS = 20.0
WARM_UP_CALLS = 20


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_serving(own: Scratch) -> Iterator[tuple[str, int]]:
    """`ledger run api` on the run's database, on a free port; its base URL and process id."""
    port = _free_port()
    env = {**worker_env(own, port), "LEDGER_PUBLIC_RATE_LIMIT": "1000000/minute"}
    with tempfile.NamedTemporaryFile(prefix="ledger-bench-api-", suffix=".log") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger.entrypoints.cli.main", "run", "api"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_up(base, process, Path(log.name))
            yield base, process.pid
        finally:
            process.terminate()
            process.wait(30)


def _wait_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LedgerError(f"the API exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise LedgerError("the API did not answer /healthz within 60 s")


def time_http(
    own: Scratch,
    learners: list[str],
    enrollments: list[tuple[str, str]],
    codes: list[str],
    samples: int,
    advance: Callable[[int], None],
) -> tuple[list[Latency], ProcessMemory]:
    """Each route `samples` times over random existing ids, interleaved, on kept-alive
    connections (one for the API, one for the console); and the API's peak resident size."""
    rng = random.Random(13)  # noqa: S311 - picking samples, not a secret
    import psycopg  # noqa: PLC0415

    with psycopg.connect(own.services.database_url, autocommit=True) as conn:
        secret = tokens.issue(conn, "bench", frozenset(Role), None).secret
    with (
        api_serving(own) as (base, pid),
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}) as api,
        httpx.Client(base_url=base) as console,
    ):
        signed = console.post("/console/login", data={"token": secret}, follow_redirects=False)
        if signed.status_code != 303:
            raise LedgerError(f"signing in to the console failed: {signed.status_code}")

        def part(value: str) -> str:
            return quote(value, safe="")

        routes: dict[str, tuple[httpx.Client, Callable[[], str], float | None]] = {
            HTTP_ROUND_TRIP: (api, lambda: "/healthz", None),
            "API GET /v1/learners/{id}": (
                api,
                lambda: f"/v1/learners/{part(rng.choice(learners))}",
                API_TARGET_MS,
            ),
            "API GET .../eligibility/{spec}": (
                api,
                lambda: "/v1/learners/{}/eligibility/{}".format(
                    *map(part, rng.choice(enrollments))
                ),
                API_TARGET_MS,
            ),
            "console learner page": (
                console,
                lambda: f"/console/learners/{part(rng.choice(learners))}",
                PAGE_TARGET_MS,
            ),
        }
        if codes:
            routes["API GET /v1/certificates/{code}"] = (
                api,
                lambda: f"/v1/certificates/{rng.choice(codes)}",
                API_TARGET_MS,
            )

        def ask(client: httpx.Client, path: str) -> None:
            answer = client.get(path)
            if answer.status_code != 200:
                raise LedgerError(f"GET {path}: {answer.status_code} {answer.text[:300]}")

        for client, path, _ in routes.values():
            for _ in range(WARM_UP_CALLS):
                ask(client, path())
        timings: dict[str, list[float]] = {name: [] for name in routes}
        for _ in range(samples):
            for name, (client, path, _) in routes.items():
                chosen = path()
                started = time.perf_counter()
                ask(client, chosen)
                timings[name].append(time.perf_counter() - started)
            advance(1)
        memory = ProcessMemory(
            "ledger run api", peak_resident_mb(pid), f"answered {len(routes) * samples:,} requests"
        )
    return [latency_of(name, timings[name], routes[name][2]) for name in routes], memory
