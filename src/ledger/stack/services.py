"""What `ledger stack up|down|status` does, and where every other command finds the services.

A service named in the environment is used as it is and never started or stopped here; an
embedded one is started by `up`, stopped by `down`, and found again by any later process through
its state directory. `down` therefore stops only what `up` started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import ConfigurationError, StackError
from ledger.settings import Settings
from ledger.stack import kafka, postgres
from ledger.stack.names import Service

#: Embedded PostgreSQL servers `ledger stack up --shards` starts at most (each is a process).
MAX_EMBEDDED_SHARDS = 4


@dataclass(frozen=True)
class ServiceStatus:
    """One line of `ledger stack status`."""

    service: Service
    managed: bool
    running: bool
    where: str
    detail: str = ""


def shard_homes(state_dir: Path) -> list[Path]:
    """The state directories of the embedded PostgreSQL servers, one a shard: the first is
    the state directory itself (where the single server always was), shard N in
    `STATE_DIR/shards/N`; how many is recorded in `STATE_DIR/shards/count`."""
    count = _recorded_shards(state_dir) or 1
    return [state_dir, *(state_dir / "shards" / str(n) for n in range(2, count + 1))]


def _recorded_shards(state_dir: Path) -> int | None:
    try:
        return int((state_dir / "shards" / "count").read_text().strip())
    except (FileNotFoundError, ValueError):
        return 1 if (postgres.data_dir(state_dir) / "PG_VERSION").exists() else None


def _record_shards(state_dir: Path, shards: int | None) -> None:
    """Keep the shard count the embedded store was made with; another one is refused (moving
    learners between layouts is a migration, `docs/sharding.md`)."""
    recorded = _recorded_shards(state_dir)
    if shards is None:
        return
    if shards < 1 or shards > MAX_EMBEDDED_SHARDS:
        raise StackError(f"--shards {shards}: the embedded store runs 1 to 4 shards")
    if recorded is not None and recorded != shards:
        raise StackError(
            f"the embedded event store in {state_dir} was made with {recorded} shard(s), not "
            f"{shards}: run `ledger stack up` without --shards, or use another LEDGER_STATE_DIR"
        )
    (state_dir / "shards").mkdir(parents=True, exist_ok=True)
    (state_dir / "shards" / "count").write_text(f"{shards}\n")


def shard_urls(settings: Settings) -> list[str]:
    """Every shard's PostgreSQL URL, the first the database of everything else: the URLs of
    `LEDGER_SHARDS`, else `LEDGER_DATABASE_URL` alone, else the embedded servers' (each
    must run: `StackError` names the first that does not)."""
    if settings.shard_urls:
        first = settings.shard_urls[0]
        if settings.database_url and settings.database_url != first:
            raise ConfigurationError(
                "LEDGER_DATABASE_URL and the first URL of LEDGER_SHARDS differ: the first shard "
                "is the ledger's database; set one of them, or both the same"
            )
        return settings.shard_urls
    if settings.database_url:
        return [settings.database_url]
    urls = []
    for n, home in enumerate(shard_homes(settings.state_path), 1):
        postmaster = postgres.read_postmaster(home)
        if postmaster is None:
            which = "" if n == 1 else f" of shard {n}"
            raise StackError(
                f"the embedded PostgreSQL{which} ({postgres.data_dir(home)}) is not running: "
                "run `ledger stack up`, or set LEDGER_DATABASE_URL"
            )
        urls.append(postgres.url(postmaster))
    return urls


def kafka_bootstrap(settings: Settings) -> str:
    """LEDGER_KAFKA_BOOTSTRAP, else every node of the local Kafka (one, or a cluster)."""
    return settings.kafka_bootstrap or kafka.bootstrap_servers(settings.state_path)


def up(
    settings: Settings,
    only: Service | None = None,
    waiting: Callable[[str], None] | None = None,
    brokers: int | None = None,
    shards: int | None = None,
) -> list[ServiceStatus]:
    """Start the embedded services that are not given by the environment; harmless if up.

    A PostgreSQL still recovering from a crash is waited for (`waiting` is told so). `brokers`:
    the local Kafka's node count, 1 or 3, when it is first made (see `ledger.stack.kafka`);
    `shards`: the embedded event store's PostgreSQL servers, when it is first made."""
    state = settings.state_path
    state.mkdir(parents=True, exist_ok=True)
    embedded_pg = not (settings.database_url or settings.shard_urls)
    if shards is not None and not embedded_pg:
        raise StackError("--shards starts embedded servers: LEDGER_SHARDS names the shards here")
    if only in (None, Service.POSTGRES) and embedded_pg:
        _record_shards(state, shards)
        for home in shard_homes(state):
            postgres.start(home, waiting=waiting)
    if only in (None, Service.KAFKA) and not settings.kafka_bootstrap:
        kafka.start(state, brokers)
    return status(settings)


def down(settings: Settings, only: Service | None = None) -> list[ServiceStatus]:
    """Stop what `up` started; services given by the environment are left alone."""
    state = settings.state_path
    if only in (None, Service.KAFKA) and not settings.kafka_bootstrap:
        kafka.stop(state)
    if only in (None, Service.POSTGRES) and not (settings.database_url or settings.shard_urls):
        for home in shard_homes(state):
            postgres.stop(home)
    return status(settings)


def status(settings: Settings) -> list[ServiceStatus]:
    state = settings.state_path
    if settings.database_url or settings.shard_urls:
        urls = settings.shard_urls or [settings.database_url or ""]
        given = "LEDGER_SHARDS" if settings.shard_urls else "LEDGER_DATABASE_URL"
        pg = ServiceStatus(
            Service.POSTGRES,
            False,
            True,
            ", ".join(_redact(url) for url in urls),
            f"from {given}",
        )
    else:
        homes = shard_homes(state)
        postmasters = [postgres.read_postmaster(home) for home in homes]
        first = postmasters[0]
        detail = f"embedded, pid {first.pid}" if first else "embedded, stopped"
        if len(homes) > 1:
            detail += "; shards: " + ", ".join(
                f"{n} " + (f"pid {pm.pid}" if pm else "stopped")
                for n, pm in enumerate(postmasters, 1)
            )
        pg = ServiceStatus(
            Service.POSTGRES,
            True,
            all(pm is not None for pm in postmasters),
            first.socket_dir if first else str(postgres.data_dir(state)),
            detail,
        )
    if settings.kafka_bootstrap:
        kf = ServiceStatus(
            Service.KAFKA, False, True, settings.kafka_bootstrap, "from LEDGER_KAFKA_BOOTSTRAP"
        )
    else:
        pids = kafka.running_pids(state)
        up_nodes = [
            n for n in kafka.nodes(state) if pids[n.node_id] and kafka.port_open(port=n.client_port)
        ]
        if len(pids) == 1:
            pid = pids[1]
            detail = f"local broker, pid {pid}" if pid else "local broker, stopped"
        else:
            detail = f"local cluster, {len(up_nodes)} of {len(pids)} nodes up: " + ", ".join(
                f"node {n} " + (f"pid {pid}" if pid else "down") for n, pid in pids.items()
            )
        kf = ServiceStatus(
            Service.KAFKA,
            True,
            len(up_nodes) == len(pids),
            kafka.bootstrap_servers(state),
            detail,
        )
    return [pg, kf]


def _redact(url: str) -> str:
    """The URL without its password, for printing."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"
