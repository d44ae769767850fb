"""What can go wrong in a chaos run, each a function that does it and returns once it is over.

Every fault is injected at a random moment of the load (the run's seed decides when, and for how
long) into the real parts: worker processes are killed (SIGKILL) or stopped (SIGTERM) and started
again after a while; the broker and the database are killed (`kill -9`) or stopped cleanly and
started with `ledger stack up`'s own code; a second intake races the first for the same learners;
a writer's transaction is held open after it has taken its notification ids, so the relay must
wait for it rather than skip past; the intake is killed in the middle of saving a large batch;
and the network to the broker is cut and restored.

The last three reach inside PostgreSQL with a trigger on the events table (`install_hold`): once
armed, the next insert of at least `min_rows` events sleeps inside its transaction, holding the
table lock and its notification ids, while everything else goes on.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ledger.broker import end_offsets, partition_leader
from ledger.entrypoints import bootstrap
from ledger.entrypoints.bench.common import Scratch
from ledger.entrypoints.chaos.environment import set_loopback
from ledger.entrypoints.chaos.processes import Workers
from ledger.entrypoints.pipeline_stages import read_stages
from ledger.errors import LedgerError, StackError
from ledger.settings import Services, Settings
from ledger.sharding import Layout
from ledger.stack import kafka, postgres
from ledger.stack import services as stack_services

#: The worker processes of an ordinary run: (name, `ledger run` role).
STANDARD_ROLES = [
    ("intake", "intake"),
    ("relay", "relay"),
    ("projections", "projections"),
    ("api", "api"),
]
#: ... and with a second intake, for the faults where two writers meet.
TWO_INTAKES = [*STANDARD_ROLES, ("intake-2", "intake")]


@dataclass
class Run:
    """What a fault acts on."""

    settings: Settings
    services: Services
    state_dir: Path
    workers: Workers
    rng: random.Random
    #: What the fault did, in words, with the seconds since the load began.
    story: list[str] = field(default_factory=list)
    #: What the fault itself found wrong while it was on (the run is then not clean).
    failed: list[str] = field(default_factory=list)


Inject = Callable[[Run], None]


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    inject: Inject
    roles: list[tuple[str, str]] = field(default_factory=lambda: list(STANDARD_ROLES))
    #: Arms the events-table trigger of `install_hold` before the run.
    needs_hold: bool = False
    #: The Kafka nodes it needs (`ledger chaos --brokers`): a fault of one node of a cluster.
    min_brokers: int = 1
    #: The event store's shards it needs (`ledger chaos --shards`): a fault of one shard.
    min_shards: int = 1


def _downtime(run: Run, low: float = 1.0, high: float = 3.0) -> float:
    return run.rng.uniform(low, high)


def process_fault(name: str, signum: signal.Signals) -> Inject:
    def inject(run: Run) -> None:
        run.workers.hold(name, signum)
        down = _downtime(run)
        run.story.append(f"{name} ended by {signum.name}, down {down:.1f} s")
        time.sleep(down)
        run.workers.release(name)

    return inject


def kafka_fault(hard: bool) -> Inject:
    """All of Kafka away (every node of a cluster), then back."""

    def inject(run: Run) -> None:
        pids = [pid for pid in kafka.running_pids(run.state_dir).values() if pid is not None]
        if not pids:
            raise StackError("the chaos broker is not running")
        if hard:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            for pid in pids:
                _wait_gone(pid)
        else:
            kafka.stop(run.state_dir)
        down = _downtime(run)
        run.story.append(f"broker {'killed' if hard else 'stopped'}, down {down:.1f} s")
        time.sleep(down)
        kafka.start(run.state_dir)

    return inject


#: How long one node of a cluster stays dead: past the controller's 4 s session timeout
#: (`ledger.stack.kafka`), so it is fenced, its partitions get new leaders and leave its ISR,
#: and the pipeline must carry on without it.
NODE_DOWN_S = (6.0, 10.0)


def kafka_node_killed(run: Run) -> None:
    """One node of the cluster SIGKILLed mid-load and started again after `NODE_DOWN_S`.

    While it is away the other two hold every partition's data and a quorum of the
    controllers, so the pipeline must not stop: the fault checks that every stage with work
    waiting moved on while the node was down (`Run.failed` says which did not)."""
    pids = kafka.running_pids(run.state_dir)
    if len(pids) < 3 or not all(pids.values()):
        raise StackError("the kafka-node-kill fault needs a cluster of three running nodes")
    # The group coordinator's node when there is one (the hardest to lose: every consumer
    # group must find a new coordinator, beside the partitions it led), else one at random.
    coordinator = partition_leader(run.services.kafka_bootstrap, "__consumer_offsets", 0)
    node = coordinator if coordinator in pids else run.rng.choice(sorted(pids))
    own = Scratch(run.settings, run.services)
    before = read_stages(own)
    pid = kafka.kill_node(run.state_dir, node)
    _wait_gone(pid)
    down = run.rng.uniform(*NODE_DOWN_S)
    time.sleep(down)
    during = read_stages(own)
    kafka.start(run.state_dir)
    role = " (the group coordinator)" if node == coordinator else ""
    run.story.append(f"kafka node {node}{role} of {len(pids)} killed (SIGKILL), down {down:.1f} s")
    if before is None or during is None:
        run.failed.append(f"the pipeline's positions could not be read while node {node} was down")
        return
    moved = {
        "intake": (during.intake_done - before.intake_done, during.intake_end > before.intake_done),
        "relay": (during.relay_done - before.relay_done, during.stored > before.relay_done),
        "read models": (
            during.projected - before.projected,
            during.published > before.projected,
        ),
    }
    _kept_flowing(run, moved, "the pipeline", f"kafka node {node}")


def _kept_flowing(run: Run, moved: dict[str, tuple[int, bool]], where: str, away: str) -> None:
    """Tell what each stage of `where` did while `away` was down ((how far it moved, whether
    work waited) by stage); each that had work and did not move fails the run, and so does a
    run in which no work came meanwhile (it proved nothing)."""
    run.story.append(
        f"while {away} was down, {where}: "
        + ", ".join(f"{stage} moved {count}" for stage, (count, _) in moved.items())
    )
    for stage, (count, had_work) in moved.items():
        if had_work and count <= 0:
            run.failed.append(f"{where}: the {stage} stopped while {away} was down")
    if not any(had_work for _, had_work in moved.values()):
        run.failed.append(
            f"no work reached {where} while {away} was down: the run proved nothing (strike "
            "earlier in the load, or send it over a longer --window)"
        )


def postgres_fault(hard: bool) -> Inject:
    def inject(run: Run) -> None:
        postmaster = postgres.read_postmaster(run.state_dir)
        if postmaster is None:
            raise StackError("the chaos database is not running")
        if hard:
            os.kill(postmaster.pid, signal.SIGKILL)
            _wait_gone(postmaster.pid)
        else:
            postgres.stop(run.state_dir)
        down = _downtime(run)
        run.story.append(f"postgres {'killed' if hard else 'stopped'}, down {down:.1f} s")
        time.sleep(down)
        postgres.start(run.state_dir)

    return inject


def shard_killed(run: Run) -> None:
    """The last shard's PostgreSQL killed (`kill -9`) mid-load, started again 3-6 s later
    (crash recovery follows). Meanwhile the first shard's learners must flow: its intake
    positions of its own partitions and its relay must move on where work waits
    (`Run.failed` says which did not), as `docs/sharding.md` promises."""
    homes = stack_services.shard_homes(run.state_dir)
    if len(homes) < 2:
        raise StackError("the postgres-shard-kill fault needs an event store of two shards")
    home = homes[-1]
    postmaster = postgres.read_postmaster(home)
    if postmaster is None:
        raise StackError(f"the chaos shard {len(homes)} is not running")
    before = _first_shard_flow(run)
    os.kill(postmaster.pid, signal.SIGKILL)
    _wait_gone(postmaster.pid)
    down = _downtime(run, 3.0, 6.0)
    time.sleep(down)
    during = _first_shard_flow(run)
    postgres.start(home)
    run.story.append(f"postgres of shard {len(homes)} killed (kill -9), down {down:.1f} s")
    if before is None or during is None:
        run.failed.append("the first shard's positions could not be read while the last was down")
        return
    moved = {
        stage: (during[stage][0] - before[stage][0], during[stage][1] > before[stage][0])
        for stage in before
    }
    _kept_flowing(run, moved, "shard 1", f"shard {len(homes)}")


def _first_shard_flow(run: Run) -> dict[str, tuple[int, int]] | None:
    """(done, to do) of the first shard's intake over its own partitions, and of its relay."""
    layout = Layout(len(run.services.shard_urls), run.settings.partitions)
    own = layout.partitions_of(0)
    try:
        ends = end_offsets(run.services.kafka_bootstrap, run.settings.intake_topic)
        with bootstrap.connect(run.services, connect_timeout=3) as conn:
            done = dict(
                conn.execute(
                    "SELECT partition, next_offset FROM ledger_intake_positions WHERE topic = %s",
                    (run.settings.intake_topic,),
                ).fetchall()
            )
            row = conn.execute(
                "SELECT (SELECT coalesce(max(position), 0) FROM ledger_relay_positions"
                "  WHERE stream = 'events'), (SELECT coalesce(max(notification_id), 0)"
                "  FROM ledger_events)"
            ).fetchone()
    except (LedgerError, psycopg.Error, OSError):
        return None
    assert row is not None  # noqa: S101 - a SELECT of scalars always returns a row
    return {
        "intake": (sum(int(done.get(p, 0)) for p in own), sum(ends.get(p, 0) for p in own)),
        "relay": (int(row[0]), int(row[1])),
    }


def _wait_gone(pid: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # our own child (the broker) lingers as a zombie until reaped
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)


def racing_writers(run: Run) -> None:
    """Freeze one intake (SIGSTOP) past its session timeout: the other takes its partitions
    and writes its learners; then thaw it, still holding the batch it was deciding."""
    frozen = 10.0 + run.rng.uniform(2.0, 4.0)
    run.workers.pause("intake")
    run.story.append(f"intake frozen {frozen:.1f} s while intake-2 takes over")
    time.sleep(frozen)
    run.workers.resume("intake")


HOLD_DDL = """
CREATE TABLE IF NOT EXISTS chaos_hold (hold_s float8 NOT NULL, min_rows int NOT NULL,
    held int NOT NULL DEFAULT 0);
INSERT INTO chaos_hold SELECT 0, 1 WHERE NOT EXISTS (SELECT 1 FROM chaos_hold);
CREATE OR REPLACE FUNCTION chaos_hold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted float8;
    rows_needed int;
BEGIN
    SELECT hold_s, min_rows INTO wanted, rows_needed FROM chaos_hold;
    IF wanted > 0 AND (SELECT count(*) FROM inserted) >= rows_needed THEN
        UPDATE chaos_hold SET hold_s = 0, held = held + 1;
        PERFORM pg_sleep(wanted);
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS chaos_hold ON ledger_events;
CREATE TRIGGER chaos_hold AFTER INSERT ON ledger_events REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION chaos_hold();
"""


def install_hold(services: Services) -> None:
    with bootstrap.connect(services) as conn:
        conn.execute(HOLD_DDL)


def _arm(services: Services, hold_s: float, min_rows: int) -> None:
    with bootstrap.connect(services) as conn:
        conn.execute("UPDATE chaos_hold SET hold_s = %s, min_rows = %s", (hold_s, min_rows))


def _sleeping_backends(services: Services) -> list[int]:
    with bootstrap.connect(services) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
            " AND datname = current_database()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def _wait_for_hold(services: Services, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _sleeping_backends(services):
            return True
        time.sleep(0.05)
    return False


def held_transaction(run: Run) -> None:
    """One intake's transaction sleeps after inserting its events (ids taken, table locked)
    while the other intake, the relay and the projections go on around it."""
    hold = run.rng.uniform(2.0, 4.0)
    _arm(run.services, hold, 1)
    if _wait_for_hold(run.services):
        run.story.append(f"a writer held its transaction open {hold:.1f} s after inserting")
        time.sleep(hold)
    else:
        _arm(run.services, 0, 1)
        run.story.append("no write came to hold")


def crash_mid_save(run: Run) -> None:
    """Kill the intake while its transaction of a large batch (50+ events) is in flight.

    The load arrives a few messages at a time, so the intake is frozen for a moment first:
    the backlog that builds up is its next batch."""
    _arm(run.services, 30.0, 50)
    run.workers.pause("intake")
    time.sleep(2.5)
    run.workers.resume("intake")
    if not _wait_for_hold(run.services):
        _arm(run.services, 0, 1)
        run.story.append("no batch of 50 events came to kill")
        return
    run.workers.hold("intake", signal.SIGKILL)
    with bootstrap.connect(run.services) as conn:
        for pid in _sleeping_backends(run.services):  # its backend would sleep on: end it
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    _arm(run.services, 0, 1)  # the killed transaction's own disarming was rolled back
    down = _downtime(run)
    run.story.append(f"intake killed mid-save of a large batch, down {down:.1f} s")
    time.sleep(down)
    run.workers.release("intake")


def network_cut(run: Run) -> None:
    """Every TCP connection of the run (Kafka's, the API's) cut, then restored."""
    down = _downtime(run, 3.0, 6.0)
    set_loopback(False)
    run.story.append(f"network cut for {down:.1f} s")
    try:
        time.sleep(down)
    finally:
        set_loopback(True)


def _nothing(run: Run) -> None:
    run.story.append("no fault")


NONE = Fault("none", "no fault: the run every other is compared with", _nothing)

FAULTS: list[Fault] = [
    Fault("intake-kill", "the intake SIGKILLed", process_fault("intake", signal.SIGKILL)),
    Fault("intake-term", "the intake SIGTERMed", process_fault("intake", signal.SIGTERM)),
    Fault("relay-kill", "the relay SIGKILLed", process_fault("relay", signal.SIGKILL)),
    Fault("relay-term", "the relay SIGTERMed", process_fault("relay", signal.SIGTERM)),
    Fault(
        "projections-kill",
        "the projection worker SIGKILLed",
        process_fault("projections", signal.SIGKILL),
    ),
    Fault(
        "projections-term",
        "the projection worker SIGTERMed",
        process_fault("projections", signal.SIGTERM),
    ),
    Fault("api-kill", "the HTTP API SIGKILLed", process_fault("api", signal.SIGKILL)),
    Fault("api-term", "the HTTP API SIGTERMed", process_fault("api", signal.SIGTERM)),
    Fault("kafka-kill", "the broker killed with kill -9", kafka_fault(hard=True)),
    Fault("kafka-term", "the broker stopped (SIGTERM)", kafka_fault(hard=False)),
    Fault(
        "kafka-node-kill",
        "one Kafka node of three SIGKILLed, started again after 6-10 s",
        kafka_node_killed,
        min_brokers=3,
    ),
    Fault("postgres-kill", "PostgreSQL killed with kill -9", postgres_fault(hard=True)),
    Fault("postgres-stop", "PostgreSQL stopped (fast shutdown)", postgres_fault(hard=False)),
    Fault(
        "racing-writers",
        "two intakes writing the same learners (one frozen past its session, then thawed)",
        racing_writers,
        TWO_INTAKES,
    ),
    Fault(
        "held-transaction",
        "a writer's transaction held open after taking its ids, others going on",
        held_transaction,
        TWO_INTAKES,
        needs_hold=True,
    ),
    Fault(
        "crash-mid-save",
        "the intake SIGKILLed while saving a batch of 50+ events",
        crash_mid_save,
        needs_hold=True,
    ),
    Fault("network-cut", "the network to the broker cut, then restored", network_cut),
    Fault(
        "postgres-shard-kill",
        "the last shard's PostgreSQL killed with kill -9, started again after 3-6 s",
        shard_killed,
        min_shards=2,
    ),
]

BY_NAME = {f.name: f for f in [NONE, *FAULTS]}
