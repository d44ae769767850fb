"""The composition root: turns `Settings` into connected parts, for every entry point.

It is the only place that finds where the services are (`services`: the embedded PostgreSQL's
socket, or the URL the environment names) and knows how the pieces fit: which PostgreSQL URL
eventsourcing gets, how a connection is opened, how tables and topics are created (once, under
a lock, so workers starting together do not race). Every entry point calls `services` once and
hands the `Services` it gets to whatever needs them; nothing below this package looks them up.

The application, the broker adapter and the read models are imported by the function that
needs them: support staff's commands only connect and query, and should not pay for loading
eventsourcing and kafka-python first (`ledger bench cli`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ledger.errors import ConfigurationError
from ledger.settings import Services, Settings
from ledger.stack import services as stack_services

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.sharding import Layout

#: Arbitrary but fixed: serialises schema creation across processes.
SCHEMA_LOCK_KEY = 0x1ED6E8


def eventsourcing_env(url: str, *, create_table: bool) -> dict[str, str]:
    """The environment eventsourcing's PostgreSQL persistence reads, from a libpq URL."""
    try:
        parts: dict[str, Any] = conninfo_to_dict(url)
    except psycopg.ProgrammingError as error:
        detail = " ".join(str(error).split())
        raise ConfigurationError(f"LEDGER_DATABASE_URL is not a PostgreSQL URL: {detail}") from None
    if not parts.get("dbname"):
        raise ConfigurationError("the database URL names no database: add /DBNAME to it")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(parts["dbname"]),
        "POSTGRES_HOST": str(parts.get("host") or "localhost"),
        "POSTGRES_PORT": str(parts.get("port") or "5432"),
        "POSTGRES_USER": str(parts.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(parts.get("password") or ""),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
        "CREATE_TABLE": "y" if create_table else "n",
    }


def database_on(url: str, database: str) -> str:
    """A URL for `database` on the server `url` names (a scratch database of a test or a
    benchmark): a URL, since `LEDGER_SHARDS` lists URLs, whatever form `url` has."""
    parts: dict[str, Any] = conninfo_to_dict(url)
    parts["dbname"] = database
    query = "&".join(
        f"{key}={quote(str(value), safe='')}" for key, value in parts.items() if value is not None
    )
    return f"postgresql:///?{query}"


def services(settings: Settings) -> Services:
    """Where PostgreSQL and Kafka are, for this process: resolved here, once.

    Raises `StackError` if the embedded PostgreSQL is not running, `ConfigurationError` if
    `LEDGER_DATABASE_URL` is not a PostgreSQL URL (one line each, never a traceback).
    """
    urls = stack_services.shard_urls(settings)
    for url in urls:
        eventsourcing_env(url, create_table=False)  # each URL must parse
    return Services(urls[0], stack_services.kafka_bootstrap(settings), tuple(urls[1:]))


def broker_only(settings: Settings) -> str:
    """Where Kafka is, for a command that needs nothing else (`ledger publish`).

    Publishing a file of events must not require PostgreSQL to be up: a producer service may
    run on a machine that never sees the ledger's database.
    """
    return stack_services.kafka_bootstrap(settings)


def connect(
    services: Services, *, connect_timeout: int = 10, shard: int = 0
) -> psycopg.Connection[Any]:
    """A PostgreSQL connection in autocommit mode, for the read side and the tools (on the
    ledger's database, or another shard of the event store)."""
    return psycopg.connect(
        services.shard_urls[shard], autocommit=True, connect_timeout=connect_timeout
    )


def open_ledger(
    services: Services, *, create_table: bool = False, pre_ping: bool = False, shard: int = 0
) -> Ledger:
    """The `Ledger` application on the configured PostgreSQL (its first shard, or `shard`).

    With `pre_ping`, each pooled connection is checked before it is lent: a long-lived process
    that only reads now and then (the API) then finds PostgreSQL again by itself after a
    restart, instead of failing once on every connection the restart broke.
    """
    from ledger.application import Ledger  # noqa: PLC0415 - see the module docstring

    env = eventsourcing_env(services.shard_urls[shard], create_table=create_table)
    if pre_ping:
        env["POSTGRES_PRE_PING"] = "y"
    return Ledger(env=env)


def open_learner_shard(settings: Settings, services: Services, learner_id: str) -> Ledger:
    """The `Ledger` on the shard where `learner_id`'s history lives (`ledger.sharding`)."""
    return open_ledger(services, shard=layout(settings, services).shard_of(learner_id))


def open_shards(services: Services) -> list[Ledger]:
    """A `Ledger` on each shard of the event store, in shard order (`docs/sharding.md`)."""
    return [open_ledger(services, shard=n) for n in range(len(services.shard_urls))]


def _number_rejections_from(conn: psycopg.Connection[Any], first: int) -> None:
    """A shard's rejections numbered from `first` on (`ledger.sharding.REJECTION_ID_SPAN`)."""
    row = conn.execute(
        "SELECT pg_get_serial_sequence('ledger_rejections', 'rejection_id')"
    ).fetchone()
    if row is None or row[0] is None:
        return
    sequence = str(row[0])
    last = conn.execute(
        "SELECT coalesce(last_value, 0) FROM pg_sequences"
        " WHERE (schemaname || '.' || sequencename) = %s",
        (sequence,),
    ).fetchone()
    if last is not None and int(last[0]) < first:
        conn.execute("SELECT setval(%s, %s, false)", (sequence, first))


def prepare_database(services: Services) -> None:
    """Create the event store and read-model tables if missing; safe to run concurrently."""
    from ledger.application import Ledger  # noqa: PLC0415 - see the module docstring
    from ledger.entrypoints.staff import create_tables as create_staff_tables  # noqa: PLC0415
    from ledger.heartbeats import create_table as create_heartbeats_table  # noqa: PLC0415
    from projections.worker import create_tables  # noqa: PLC0415

    for n, url in enumerate(services.shard_urls):
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
            try:
                ledger = Ledger(env=eventsourcing_env(url, create_table=True))
                ledger.close()
                if n == 0:  # the read side lives in the first shard's database
                    create_tables(conn)
                    create_heartbeats_table(conn)
                    create_staff_tables(conn)
                else:
                    from ledger.sharding import REJECTION_ID_SPAN  # noqa: PLC0415

                    _number_rejections_from(conn, n * REJECTION_ID_SPAN)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


def describe_replication(settings: Settings, services: Services) -> str:
    """One line on how the ledger's topics are kept, from the broker: what an operator checks
    after `ledger stack up --brokers 3` (every partition on three nodes, two in sync)."""
    from ledger.broker import replication  # noqa: PLC0415

    kept = replication(services.kafka_bootstrap, settings.topics)
    shapes = sorted({(r.replicas, r.min_in_sync) for r in kept.values()})
    words = "; ".join(
        f"{replicas} cop{'y' if replicas == 1 else 'ies'} of every partition, "
        f"a write acknowledged once {minimum} ha{'s' if minimum == 1 else 've'} it"
        for replicas, minimum in shapes
    )
    return f"ledger topics ({len(kept)}): {words}"


def layout(settings: Settings, services: Services) -> Layout:
    """The shards and partitions the ledger runs with; `ConfigurationError` unless the
    partitions can be shared evenly by the shards."""
    from ledger.sharding import Layout  # noqa: PLC0415

    return Layout(len(services.shard_urls), settings.partitions)


def prepare_topics(settings: Settings, services: Services) -> list[str]:
    """Create the three ledger topics if missing, kept forever; return those created."""
    from ledger.broker import (  # noqa: PLC0415
        describe_topics,
        ensure_topics,
        warm_up_groups,
    )

    layout(settings, services)  # the partitions must suit the shards
    partitions = settings.partitions
    # Where a learner lives, and where the relay puts their events, is counted in
    # LEDGER_PARTITIONS (`ledger.sharding`): topics made with another count would send
    # events to partitions that do not exist, or refuse every message as misplaced.
    for topic, found in describe_topics(services.kafka_bootstrap, settings.topics[:2]).items():
        if found != partitions:
            raise ConfigurationError(
                f"{topic} has {found} partitions but LEDGER_PARTITIONS is {partitions}: "
                f"set LEDGER_PARTITIONS={found} (a learner's partition, and so their shard, "
                "is counted in it)"
            )
    bootstrap = services.kafka_bootstrap
    created = ensure_topics(
        bootstrap,
        dict.fromkeys(settings.topics, partitions),
        {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"},
    )
    if created:
        warm_up_groups(bootstrap, settings.intake_topic)
    return created
