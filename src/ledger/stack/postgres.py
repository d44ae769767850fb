"""The embedded PostgreSQL server (the `pgserver` package), kept in `STATE_DIR/postgres`.

pgserver ships a real PostgreSQL build as a wheel and listens on a Unix socket only, so nothing on
the machine can collide with it. We let pgserver initialise and start the server, and find and
stop it ourselves through the standard `postmaster.pid` file, which works from any process.

After a crash (the postmaster killed with SIGKILL, the machine losing power) the next start
replays the write-ahead log before it accepts connections, which takes from a moment to
minutes; and the old server's backends may hold its shared memory for a few seconds more, so
the first attempts to start can fail outright. `start` therefore tries again until the server
says it is ready (`postmaster.pid`'s status line) and accepts a connection, or a deadline passes.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from ledger.errors import StackError

DATABASE_NAME = "ledger"


@dataclass(frozen=True)
class Postmaster:
    """What `postmaster.pid` says about a running server."""

    pid: int
    port: int
    socket_dir: str
    #: `starting` (also while recovering from a crash), `ready`, `stopping` or `standby`.
    status: str = "ready"


def data_dir(state_dir: Path) -> Path:
    return state_dir / "postgres"


def read_postmaster(state_dir: Path) -> Postmaster | None:
    """The running embedded server, or None if it is not running."""
    pid_file = data_dir(state_dir) / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 5 or not lines[0].strip().isdigit():
        return None
    pid = int(lines[0])
    if not _alive(pid):
        return None
    status = lines[7].strip() if len(lines) > 7 else "starting"
    return Postmaster(pid=pid, port=int(lines[3]), socket_dir=lines[4].strip(), status=status)


def _alive(pid: int) -> bool:
    """Whether `pid` runs: exists, and is not a zombie (a postmaster killed with SIGKILL stays
    one until its parent reaps it, and a zombie still answers `kill(pid, 0)`)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by the pgserver system user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: trust kill(pid, 0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def url(postmaster: Postmaster, database: str = DATABASE_NAME) -> str:
    """A libpq URL for the embedded server (socket directory as the host)."""
    return (
        f"postgresql://postgres@/{database}"
        f"?host={quote(postmaster.socket_dir, safe='/')}&port={postmaster.port}"
    )


#: How long `start` waits for the server to be ready (crash recovery included) by default.
START_TIMEOUT_S = 600.0


def start(
    state_dir: Path,
    timeout_s: float = START_TIMEOUT_S,
    waiting: Callable[[str], None] | None = None,
) -> Postmaster:
    """Initialise (first time) and start the server; return it once it accepts connections.

    A server that is already starting (recovering from a crash) is waited for; `waiting` is
    told, once, what is being waited for.
    """
    deadline = time.monotonic() + timeout_s
    told = False
    last_error: Exception | None = None
    while True:
        running = read_postmaster(state_dir)
        if running is None:
            try:
                _launch(state_dir)
            except Exception as error:  # noqa: BLE001 - retried until the deadline, then shown
                last_error = error
        else:
            ready = _ready(running)
            if ready:
                _ensure_database(running)
                return running
            if waiting is not None and not told:
                waiting(
                    f"PostgreSQL (pid {running.pid}) is {running.status}, probably recovering "
                    "from a crash; waiting until it accepts connections"
                )
                told = True
        if time.monotonic() > deadline:
            directory = data_dir(state_dir)
            log = directory / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            raise StackError(
                f"the embedded PostgreSQL in {directory} was not ready within {timeout_s:.0f} s"
                f" ({last_error or 'still starting'}); its log ends:\n{tail}"
            )
        time.sleep(0.5)


def _launch(state_dir: Path) -> None:
    """Initialise the data directory if new, and start the server (it is not running).

    `PostgresServer(...)` rather than pgserver's `get_server`: that one keeps the server it
    started per process and hands it back unchecked, so a process that had started it once
    (`ledger chaos`, which restarts it after each kill) never started it again.
    """
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; pgserver copes without it.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import PostgresServer  # noqa: PLC0415 - heavy; only to start

    directory = data_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    PostgresServer(directory.resolve(), cleanup_mode=None)


def _ready(postmaster: Postmaster) -> bool:
    """Whether the server says it is ready and really takes a connection."""
    if postmaster.status != "ready":
        return False
    try:
        with psycopg.connect(url(postmaster, "postgres"), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _ensure_database(postmaster: Postmaster) -> None:
    with psycopg.connect(url(postmaster, "postgres"), autocommit=True, connect_timeout=5) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))


def stop(state_dir: Path, timeout_s: float = 60.0) -> bool:
    """Stop the server with a fast shutdown; return False if it was not running."""
    postmaster = read_postmaster(state_dir)
    if postmaster is None:
        return False
    os.kill(postmaster.pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_postmaster(state_dir) is None:
            return True
        time.sleep(0.2)
    raise StackError(
        f"PostgreSQL (pid {postmaster.pid}) did not stop within {timeout_s:.0f} s; "
        "stop it by hand or try again"
    )
