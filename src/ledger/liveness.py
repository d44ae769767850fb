"""A consumer that stops making progress is noticed, said, and replaced by a fresh one.

kafka-python's group member can stop fetching while believing itself assigned: its lookup of
the group coordinator waits on a request that never completes, so every `poll` returns nothing
after its timeout, no error is raised and nothing is logged, for as long as the process lives
(see `docs/operations.md`, "Silent consumer stalls"). From the outside it looks exactly like an
idle worker. The one thing that tells them apart is lag: records waiting in partitions the
member holds, while it receives none of them.

So each consumer-group worker keeps a `ConsumerWatch`. Records received count as progress.
When a worker has received nothing for `check_every_s`, the watch asks the broker for the end
offsets of the assigned partitions (a request to the partition leaders, which does not need the
group coordinator) and compares them with the consumer's positions; lag with no progress for
`stall_after_s` is a stall, and so is a member that holds no partitions and is not in a stable
group for that long. The worker then closes that consumer and joins its group again
with a new one, which seeks to the positions stored in PostgreSQL, so nothing is skipped or
applied twice. A worker with no lag is idle, not stalled, and costs one request per check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.broker import BrokerUnavailableError, Consumer

#: Seconds without progress, with records waiting, before a consumer counts as stalled. The
#: group's own session timeout is 10 s: a healthy member that lost its partitions has been
#: given new ones well before this.
STALL_AFTER_S = 30.0
#: Seconds between lag checks while a worker receives nothing.
CHECK_EVERY_S = 5.0


@dataclass(frozen=True)
class Stall:
    """Why a consumer is judged stalled: for the log line, and for the metrics."""

    seconds_without_progress: float
    lag: int
    assigned: list[tuple[str, int]]
    group_state: str

    def as_fields(self) -> dict[str, object]:
        return {
            "seconds_without_progress": round(self.seconds_without_progress, 1),
            "lag": self.lag,
            "assigned": [p for _, p in self.assigned],
            "group_state": self.group_state,
        }


@dataclass
class ConsumerWatch:
    """Progress of one consumer-group worker, and the judgement whether it has stalled."""

    stall_after_s: float = STALL_AFTER_S
    check_every_s: float = CHECK_EVERY_S
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    #: When records last arrived, or the worker was last seen with nothing to do.
    last_progress: float = field(init=False)
    #: The same moment in wall-clock seconds since 1970, for `/metrics`.
    last_progress_wall: float = field(init=False)
    #: Records still waiting in the assigned partitions, as of the last check (None: unknown).
    lag: int | None = field(default=None, init=False)
    #: How often this worker has left its group to join it again after a stall.
    rejoins: int = field(default=0, init=False)
    _last_check: float = field(init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """A fresh consumer: it gets a full `stall_after_s` to show progress."""
        now = self.clock()
        self.last_progress = self._last_check = now
        self.last_progress_wall = self.wall_clock()

    def progressed(self) -> None:
        self.last_progress = self.clock()
        self.last_progress_wall = self.wall_clock()

    def after_poll(self, consumer: Consumer, received: int) -> Stall | None:
        """Record a poll's outcome; return a `Stall` when the consumer must be replaced."""
        if received or consumer.held:
            self.progressed()
            return None
        now = self.clock()
        if now - self._last_check < self.check_every_s:
            return None
        self._last_check = now
        assigned = consumer.assignment()
        if assigned:
            try:
                lag = consumer.lag(assigned)
            except BrokerUnavailableError:
                self.lag = None  # the broker is away: an outage, handled as one elsewhere
                return None
        else:
            # No partitions: fine for a member of a stable group with more members than
            # partitions; a member that never gets into a stable group is stuck all the same.
            lag = 0 if consumer.group_is_stable() else -1
        self.lag = max(lag, 0)
        if lag == 0:
            self.progressed()  # nothing to do is not a stall
            return None
        idle_for = now - self.last_progress
        if idle_for < self.stall_after_s:
            return None
        self.rejoins += 1
        return Stall(idle_for, max(lag, 0), assigned, consumer.group_state())
