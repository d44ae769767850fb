"""The embedded PostgreSQL server (the `pgserver` package), kept in `STATE_DIR/postgres`.

pgserver ships a real PostgreSQL build as a wheel and listens on a Unix socket only, so nothing on
the machine can collide with it. We let pgserver initialise and start the server, and find and
stop it ourselves through the standard `postmaster.pid` file, which works from any process.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ledger.errors import StackError

DATABASE_NAME = "ledger"


@dataclass(frozen=True)
class Postmaster:
    """What `postmaster.pid` says about a running server."""

    pid: int
    port: int
    socket_dir: str


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by the pgserver system user
    return Postmaster(pid=pid, port=int(lines[3]), socket_dir=lines[4].strip())


def url(postmaster: Postmaster, database: str = DATABASE_NAME) -> str:
    """A libpq URL for the embedded server (socket directory as the host)."""
    return (
        f"postgresql://postgres@/{database}"
        f"?host={quote(postmaster.socket_dir, safe='/')}&port={postmaster.port}"
    )


def start(state_dir: Path) -> Postmaster:
    """Initialise (first time) and start the server; return it once it accepts connections."""
    running = read_postmaster(state_dir)
    if running is not None:
        return running
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; pgserver copes without it.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server  # noqa: PLC0415 - heavy; only to start

    directory = data_dir(state_dir)
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(directory, cleanup_mode=None)
    except Exception as error:
        log = directory / "log"
        tail = log.read_text()[-2000:] if log.exists() else "(no log)"
        raise StackError(
            f"the embedded PostgreSQL in {directory} did not start ({error}); its log ends:\n{tail}"
        ) from error
    postmaster = read_postmaster(state_dir)
    if postmaster is None:
        raise StackError(f"the embedded PostgreSQL in {directory} started but is not running")
    # DATABASE_NAME is a constant of ours, never input.
    result = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
    if "(1 row)" not in result:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return postmaster


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
