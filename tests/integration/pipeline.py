"""Run the relay and the projection worker in-process until they have caught up."""

from __future__ import annotations

from typing import Any

import psycopg

from ledger.relay import EVENTS_STREAM, PAGE, Relay
from ledger.settings import Settings
from projections import generations
from projections.catalog import READ_MODELS
from projections.rebuild import table_dump
from projections.status import projection_lag
from projections.worker import ProjectionWorker

from .helpers import open_ledger, services_of, wait_for


def relay_all(settings: Settings, page: int = PAGE) -> None:
    """Run the relay, `page` events at a time, until everything stored is on `ledger.events`."""
    ledger = open_ledger(settings)
    relay = Relay(ledger, settings, services_of(settings).kafka_bootstrap, batch_size=page)
    try:
        end = ledger.recorder.max_notification_id()
        wait_for(
            lambda: (
                relay.step() is not None
                and ledger.ledger_recorder.relay_position(EVENTS_STREAM) >= (end or 0)
            ),
            60,
            "the relay",
        )
    finally:
        relay.close()
        ledger.close()


def projected_to_the_end(settings: Settings) -> bool:
    """Whether every read model has applied all of a non-empty `ledger.events`."""
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        lags = projection_lag(conn, services_of(settings).kafka_bootstrap, settings.events_topic)
    return sum(lag.end for lag in lags) > 0 and all(lag.behind == 0 for lag in lags)


def project_all(settings: Settings) -> None:
    """Run the projection worker until every read model is at the end of `ledger.events`."""
    worker = ProjectionWorker(
        settings, services_of(settings).database_url, services_of(settings).kafka_bootstrap
    )

    def caught_up() -> bool:
        worker.step()
        return projected_to_the_end(settings)

    try:
        wait_for(caught_up, 90, "the projections")
    finally:
        worker.close()


def dumps(settings: Settings) -> dict[str, Any]:
    with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
        result = {}
        for model in READ_MODELS:
            with conn.cursor() as cur:
                schema = generations.live_schema(cur, model.name)
            result[model.name] = table_dump(conn, schema, model)
        return result


def scenario_projected(settings: Settings) -> Settings:
    """The read scenario (tests/read_scenario.py) stored, relayed and projected."""
    from .. import read_scenario

    ledger = open_ledger(settings)
    try:
        read_scenario.build(ledger)
    finally:
        ledger.close()
    relay_all(settings)
    project_all(settings)
    return settings
