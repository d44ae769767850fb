"""The worker processes of a chaos run, kept running as a service manager would keep them.

Each worker (`intake`, `relay`, `projections`, `api`, and for some faults a second intake) is a
`ledger run ROLE` process of its own, logging JSON lines to a file. A keeper thread starts
again, at once, any process that died without a fault holding it down, and counts it as a crash:
a fault of the matrix only ever ends a process on purpose (`hold`), and starts it again
(`release`) when the fault is over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class WorkerProcess:
    """One `ledger run ROLE` process, and what became of it."""

    name: str
    role: str
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    #: Write kafka-python's debug log beside the worker's own (`LEDGER_KAFKA_LOG`).
    kafka_debug: bool = False
    #: Held down by a fault: not to be started again until released.
    held: bool = False
    starts: int = 0
    #: Exits nobody asked for (a crash), with their status.
    crashes: list[int] = field(default_factory=list)

    def start(self) -> None:
        env = self.env
        if self.kafka_debug:
            env = {**env, "LEDGER_KAFKA_LOG": str(self.log.with_suffix(".kafka.log"))}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ledger.entrypoints.cli.main", "run", self.role],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Workers:
    """Every worker process of a run."""

    def __init__(
        self,
        env: dict[str, str],
        logs: Path,
        roles: list[tuple[str, str]],
        *,
        kafka_debug: bool = False,
    ) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = logs
        self.by_name = {
            name: WorkerProcess(name, role, logs / f"{name}.log", env, kafka_debug=kafka_debug)
            for name, role in roles
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._keeper = threading.Thread(target=self._keep, name="chaos-keeper", daemon=True)

    def start(self) -> Workers:
        for worker in self.by_name.values():
            worker.start()
        self._keeper.start()
        return self

    def _keep(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                for worker in self.by_name.values():
                    if worker.held or worker.alive() or worker.process is None:
                        continue
                    worker.crashes.append(worker.process.returncode)
                    worker.start()

    def hold(self, name: str, signum: signal.Signals, timeout_s: float = 60.0) -> None:
        """End one worker with `signum` (SIGKILL, SIGTERM) and keep it down; waits for it."""
        with self._lock:
            worker = self.by_name[name]
            worker.held = True
            process = worker.process
        if process is None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pause(self, name: str) -> None:
        """SIGSTOP: the process keeps everything it holds, and does nothing (a zombie writer)."""
        pid = self.by_name[name].pid
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        pid = self.by_name[name].pid
        if pid is not None:
            os.kill(pid, signal.SIGCONT)

    def release(self, name: str) -> None:
        """Start a held worker again."""
        with self._lock:
            worker = self.by_name[name]
            worker.held = False
            if not worker.alive():
                worker.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM every worker and wait for each (a worker that hangs is killed)."""
        self._stop.set()
        if self._keeper.is_alive():
            self._keeper.join(5)
        for worker in self.by_name.values():
            if worker.alive() and worker.process is not None:
                worker.process.send_signal(signal.SIGCONT)
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for worker in self.by_name.values():
            if worker.process is None:
                continue
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
                worker.crashes.append(-9)

    @property
    def crashes(self) -> int:
        return sum(len(w.crashes) for w in self.by_name.values())

    def log_lines(self, event: str | None = None) -> Iterator[dict[str, Any]]:
        """Every JSON log line of every worker (of one `event`, if given)."""
        for worker in self.by_name.values():
            if not worker.log.exists():
                continue
            for line in worker.log.read_text(errors="replace").splitlines():
                if not line.startswith("{"):
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if event is None or entry.get("event") == event:
                    entry["_worker"] = worker.name
                    yield entry
