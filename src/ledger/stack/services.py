"""What `ledger stack up|down|status` does, and where every other command finds the services.

A service named in the environment is used as it is and never started or stopped here; an
embedded one is started by `up`, stopped by `down`, and found again by any later process through
its state directory. `down` therefore stops only what `up` started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ledger.errors import StackError
from ledger.settings import Settings
from ledger.stack import kafka, postgres
from ledger.stack.names import Service


@dataclass(frozen=True)
class ServiceStatus:
    """One line of `ledger stack status`."""

    service: Service
    managed: bool
    running: bool
    where: str
    detail: str = ""


def database_url(settings: Settings) -> str:
    """The PostgreSQL URL to use; raises `StackError` if the embedded server is not running."""
    if settings.database_url:
        return settings.database_url
    postmaster = postgres.read_postmaster(settings.state_path)
    if postmaster is None:
        raise StackError(
            f"the embedded PostgreSQL ({postgres.data_dir(settings.state_path)}) is not running: "
            "run `ledger stack up`, or set LEDGER_DATABASE_URL"
        )
    return postgres.url(postmaster)


def kafka_bootstrap(settings: Settings) -> str:
    """LEDGER_KAFKA_BOOTSTRAP, else every node of the local Kafka (one, or a cluster)."""
    return settings.kafka_bootstrap or kafka.bootstrap_servers(settings.state_path)


def up(
    settings: Settings,
    only: Service | None = None,
    waiting: Callable[[str], None] | None = None,
    brokers: int | None = None,
) -> list[ServiceStatus]:
    """Start the embedded services that are not given by the environment; harmless if up.

    A PostgreSQL still recovering from a crash is waited for (`waiting` is told so). `brokers`:
    the local Kafka's node count, 1 or 3, when it is first made (see `ledger.stack.kafka`)."""
    state = settings.state_path
    state.mkdir(parents=True, exist_ok=True)
    if only in (None, Service.POSTGRES) and not settings.database_url:
        postgres.start(state, waiting=waiting)
    if only in (None, Service.KAFKA) and not settings.kafka_bootstrap:
        kafka.start(state, brokers)
    return status(settings)


def down(settings: Settings, only: Service | None = None) -> list[ServiceStatus]:
    """Stop what `up` started; services given by the environment are left alone."""
    state = settings.state_path
    if only in (None, Service.KAFKA) and not settings.kafka_bootstrap:
        kafka.stop(state)
    if only in (None, Service.POSTGRES) and not settings.database_url:
        postgres.stop(state)
    return status(settings)


def status(settings: Settings) -> list[ServiceStatus]:
    state = settings.state_path
    if settings.database_url:
        pg = ServiceStatus(
            Service.POSTGRES,
            False,
            True,
            _redact(settings.database_url),
            "from LEDGER_DATABASE_URL",
        )
    else:
        postmaster = postgres.read_postmaster(state)
        pg = ServiceStatus(
            Service.POSTGRES,
            True,
            postmaster is not None,
            postmaster.socket_dir if postmaster else str(postgres.data_dir(state)),
            f"embedded, pid {postmaster.pid}" if postmaster else "embedded, stopped",
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
