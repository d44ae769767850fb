"""Process 1 of a chaos run's PID namespace: starts the run, reaps orphans, passes on signals.

Whatever dies in the namespace with its parent gone (PostgreSQL's postmaster and its backends
after a `kill -9`, for instance) becomes a child of process 1, and stays a zombie until process 1
waits for it: a zombie postmaster still answers `kill(pid, 0)`, so it looked alive, and the run
waited for it for ever. And process 1 of a namespace receives no signal it has not asked for, so
the run could not be stopped from outside. This process does what an init does, and no more:
starts `python -m ledger.entrypoints.cli.main ARGS...` as its one child, reaps every process
that ends, forwards SIGINT, SIGTERM and SIGUSR1 to the child, and exits with the child's status
(the kernel then ends everything else in the namespace).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType


def main(argv: list[str]) -> int:
    child = subprocess.Popen([sys.executable, "-m", "ledger.entrypoints.cli.main", *argv])

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
        if pid == child.pid:
            return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
