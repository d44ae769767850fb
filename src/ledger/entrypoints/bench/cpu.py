"""Where the machine's processors went during a benchmark's window, process group by group.

A latency at a steady load is mostly queueing once the machine is busy, and on a 2-core machine
the benchmark's own load generator, the broker and PostgreSQL share the cores with the workers.
So `ledger bench latency` says, beside its percentiles, how many cores each part kept busy
while it sent: from the kernel's own accounting (`/proc/PID/stat`, `/proc/stat`), so it costs
two reads of `/proc` and no sampling. Processes that ended inside the window are not counted
by name; the machine's total still counts them, under "everything else".
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Clock ticks a second, the unit of the kernel's CPU times.
_TICKS = os.sysconf("SC_CLK_TCK")
#: Processes named by what they run rather than by who started them.
BY_COMMAND = {"postgres": "PostgreSQL (every process)", "java": "Kafka broker"}
OTHERS = "everything else"


@dataclass(frozen=True)
class CpuUse:
    """How many cores one part kept busy on average over the window."""

    name: str
    cores: float


@dataclass(frozen=True)
class _Snapshot:
    at: float
    machine: float
    by_group: dict[str, float]


def _processes() -> dict[int, tuple[int, str, float]]:
    """Every process now: its parent, its command name and its CPU seconds so far."""
    found: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        # "pid (comm) state ppid ...": the command may hold spaces and parentheses.
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (
            int(fields[1]),
            command,
            (int(fields[11]) + int(fields[12])) / _TICKS,
        )
    return found


def _machine_busy() -> float:
    """CPU seconds all cores have spent on anything but waiting, since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle, iowait
    return (sum(values[:8]) - idle) / _TICKS


class CpuWindow:
    """Snapshots of CPU time by group: `roots` name processes (and their descendants); the
    others are grouped by command (`BY_COMMAND`), or not at all."""

    def __init__(self, roots: Mapping[str, int]) -> None:
        self.roots = {pid: name for name, pid in roots.items()}
        self._start: _Snapshot | None = None
        #: What the last `stop` measured.
        self.uses: list[CpuUse] = []
        self.machine = 0.0

    def _group(self, pid: int, processes: Mapping[int, tuple[int, str, float]]) -> str | None:
        walked = 0
        current = pid
        while current in processes and walked < 64:
            if current in self.roots:
                return self.roots[current]
            current = processes[current][0]
            walked += 1
        return BY_COMMAND.get(processes[pid][1])

    def _snapshot(self) -> _Snapshot:
        processes = _processes()
        by_group: dict[str, float] = {}
        for pid, (_, _, seconds) in processes.items():
            group = self._group(pid, processes)
            if group is not None:
                by_group[group] = by_group.get(group, 0.0) + seconds
        return _Snapshot(time.monotonic(), _machine_busy(), by_group)

    def start(self) -> None:
        self._start = self._snapshot()

    def stop(self) -> tuple[list[CpuUse], float]:
        """Each group's cores busy since `start`, named groups first, "everything else"
        last; and the machine's cores busy in all."""
        if self._start is None:
            raise RuntimeError("CpuWindow.stop before start")
        end = self._snapshot()
        elapsed = max(end.at - self._start.at, 1e-9)
        uses = []
        for name in [*self.roots.values(), *BY_COMMAND.values()]:
            spent = end.by_group.get(name, 0.0) - self._start.by_group.get(name, 0.0)
            uses.append(CpuUse(name, max(spent, 0.0) / elapsed))
        machine = (end.machine - self._start.machine) / elapsed
        uses.append(CpuUse(OTHERS, max(machine - sum(u.cores for u in uses), 0.0)))
        self.uses, self.machine = uses, machine
        return uses, machine
