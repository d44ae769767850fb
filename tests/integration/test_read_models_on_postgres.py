"""The read models on real Kafka and PostgreSQL: known answers, relay crash, rebuild.

The scenario (tests/read_scenario.py) is written straight into the event store by the `Ledger`
(the intake is tested elsewhere); the real relay publishes it and the real projection worker
applies it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.sql import SQL, Identifier
from structlog.testing import capture_logs

from ledger.broker import Consumer, Record, end_offsets
from ledger.relay import EVENTS_STREAM
from ledger.settings import Settings
from projections import generations
from projections.catalog import READ_MODELS
from projections.read_models import certificates, payments, retention
from projections.read_models.eligibility import eligibility
from projections.read_models.learner_progress import learner_progress
from projections.rebuild import rebuild, rebuild_models, table_dump
from projections.status import projection_lag

from .. import read_scenario
from ..scenarios import DS
from .helpers import (
    cli_env,
    dumps,
    fresh_settings,
    open_ledger,
    project_all,
    projected_to_the_end,
    relay_all,
    scenario_projected,
    services_of,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def projected(own_settings: Settings) -> Settings:
    return scenario_projected(own_settings)


def test_every_read_model_gives_the_known_answers(projected: Settings) -> None:
    with psycopg.connect(services_of(projected).database_url, autocommit=True) as conn:
        bob = learner_progress(conn, "bob")
        assert bob is not None
        (enrollment,) = bob.enrollments
        paid = {c.course_id: c.paid_by for c in enrollment.courses}
        assert paid["ds-1"] == [] and paid["ds-2"] == ["bob-2"]

        why = eligibility(conn, "bob", DS)
        assert why is not None and not why.eligible
        assert "course ds-3 passed but not paid" in [m.message for m in why.missing]
        assert why.missing[-1].reason == "identity_not_verified"

        ada = eligibility(conn, "ada", DS)
        assert ada is not None and ada.certified and ada.verification_code
        valid = certificates.verify(conn, ada.verification_code)
        assert valid is not None
        assert (valid.status, valid.learner_id, valid.kind) == ("valid", "ada", "specialization")

        (cy_certificate,) = [
            c for c in (learner_progress(conn, "cy") or bob).enrollments[0].courses if c.passed
        ]
        assert cy_certificate.certified is False  # revoked by trust & safety

        states = {p.payment_id: (p.state, p.reason) for p in payments.payments_of(conn, "bob")}
        assert states == {
            "bob-1": ("refunded", None),
            "bob-2": ("captured", None),
            "bob-2b": ("to_be_returned", "course_already_paid"),
        }

        (row,) = retention.funnel(conn, DS)
        assert row.month == date(2026, 1, 1)
        assert (row.registered, row.with_intent, row.payers, row.completed) == (3, 2, 3, 1)
        assert row.as_dict()["payer_completion_rate"] == 33.3
        assert certificates.verify(conn, "no-such-code") is None
        assert learner_progress(conn, "nobody") is None


def test_a_relay_crash_before_storing_its_position_changes_no_read_model(
    projected: Settings,
) -> None:
    before = dumps(projected)
    # A relay killed after Kafka acknowledged a batch but before it stored its position
    # restarts from the position stored before: it publishes that batch again, under new
    # offsets. Put the stored position back to where it was before everything, and restart.
    ledger = open_ledger(projected)
    try:
        with psycopg.connect(services_of(projected).database_url, autocommit=True) as conn:
            conn.execute("UPDATE ledger_relay_positions SET position = 0")
        assert ledger.ledger_recorder.relay_position(EVENTS_STREAM) == 0
    finally:
        ledger.close()
    relay_all(projected)
    project_all(projected)
    after = dumps(projected)
    assert after == before
    assert sum(len(rows) for model in after.values() for rows in model.values()) > 50


def _published(settings: Settings) -> list[Record]:
    """Every record on `ledger.events`, partition by partition, in offset order."""
    bootstrap = services_of(settings).kafka_bootstrap
    total = sum(end_offsets(bootstrap, settings.events_topic).values())
    consumer = Consumer(bootstrap, None, "test-published", 1000)
    records: list[Record] = []

    def all_read() -> bool:
        records.extend(consumer.poll(500))
        return len(records) >= total

    try:
        consumer.assign_all(settings.events_topic)
        wait_for(all_read, 30, "the records of ledger.events")
    finally:
        consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _stamp(record: Record) -> tuple[int, int]:
    return int(record.header("ledger_position") or ""), int(
        record.header("ledger_relayed_through") or ""
    )


def test_a_relay_resending_part_of_its_pages_changes_no_read_model(
    base_settings: Settings,
) -> None:
    """The relay stamps each record with its notification id and the position its page was
    sent from. Restarted from the middle of its third page of 7, with pages of 5, it sends a
    few events again; the projections skip them, so the tables do not change."""
    with fresh_settings(base_settings) as settings:
        ledger = open_ledger(settings)
        try:
            read_scenario.build(ledger)
            ids = [n.id for n in ledger.recorder.select_notifications(start=1, limit=10_000)]
        finally:
            ledger.close()
        relay_all(settings, page=7)
        first = _published(settings)
        assert sorted(_stamp(r) for r in first) == [
            (n, ids[i - i % 7 - 1] if i >= 7 else 0) for i, n in enumerate(ids)
        ]
        project_all(settings)
        before = dumps(settings)

        with psycopg.connect(services_of(settings).database_url, autocommit=True) as conn:
            conn.execute("UPDATE ledger_relay_positions SET position = %s", (ids[16],))
        relay_all(settings, page=5)
        again = [r for r in _published(settings) if r not in first]
        assert sorted(_stamp(r)[0] for r in again) == ids[17:]
        project_all(settings)
        assert dumps(settings) == before


def test_a_rebuild_gives_byte_identical_tables(projected: Settings) -> None:
    url = services_of(projected).database_url
    bootstrap = services_of(projected).kafka_bootstrap
    live = dumps(projected)
    for model in READ_MODELS:
        result = rebuild(url, bootstrap, projected.events_topic, model, switch=False)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                assert table_dump(conn, result.generation.schema, model) == live[model.name]
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                generations.drop(conn, result.generation)
    # And with the switch: the new generation is live, the old schema gone, answers the same.
    result = rebuild(url, bootstrap, projected.events_topic, READ_MODELS[0], switch=True)
    assert result.replaced is not None
    assert dumps(projected) == live
    with psycopg.connect(url, autocommit=True) as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
    assert result.generation.schema in schemas
    assert result.replaced.schema not in schemas


@pytest.mark.parametrize("processes", [1, 2])
def test_every_model_rebuilt_in_one_pass_gives_the_same_tables(
    projected: Settings, processes: int
) -> None:
    """One pass for all the models (as `ledger audit verify` and `projections rebuild` do),
    in small batches so rows kept between batches are reused, in one process or with the
    partitions shared out: the tables the live worker built, and every record handed to the
    caller once."""
    url = services_of(projected).database_url
    bootstrap = services_of(projected).kafka_bootstrap
    live = dumps(projected)
    seen: list[tuple[int, int]] = []
    results = rebuild_models(
        url,
        bootstrap,
        projected.events_topic,
        READ_MODELS,
        switch=False,
        max_batch=7,
        on_records=lambda records: seen.extend((r.partition, r.offset) for r in records),
        processes=processes,
    )
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for model, result in zip(READ_MODELS, results, strict=True):
                assert table_dump(conn, result.generation.schema, model) == live[model.name]
                assert result.records == len(seen)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for result in results:
                generations.drop(conn, result.generation)
    assert len(seen) == len(set(seen)) == len(_published(projected))


def test_two_projection_processes_build_the_same_tables(
    own_settings: Settings, base_settings: Settings, tmp_path: Path
) -> None:
    """`ledger run projections --processes 2`, both processes in the group before the events
    come, gives the tables one in-process worker builds from the same log."""
    settings = own_settings
    ledger = Path(sys.executable).with_name("ledger")
    log = tmp_path / "projections.log"
    process = subprocess.Popen(
        [str(ledger), "run", "projections", "--processes", "2"],
        env=cli_env(settings),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )

    def lines(event: str) -> list[dict[str, Any]]:
        found = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        return [x for x in found if x.get("event") == event]

    def both_assigned() -> bool:
        latest = {x["pid"]: x["assigned"] for x in lines("projections.positions")}
        return len(latest) == 2 and all(latest.values())

    url = services_of(settings).database_url
    bootstrap = services_of(settings).kafka_bootstrap

    def caught_up() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            lags = projection_lag(conn, bootstrap, settings.events_topic)
        return sum(lag.end for lag in lags) > 0 and all(lag.behind == 0 for lag in lags)

    try:
        wait_for(both_assigned, 90, "both projection processes in the group")
        stored = open_ledger(settings)
        try:
            read_scenario.build(stored)
        finally:
            stored.close()
        relay_all(settings)
        wait_for(caught_up, 120, "two projection processes")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log.read_text()[-2000:]
    assert len({x["pid"] for x in lines("projections.event")}) == 2, "both applied events"
    with fresh_settings(base_settings) as other:
        single = other.model_copy(update={"topic_prefix": settings.topic_prefix})
        project_all(single)
        assert dumps(settings) == dumps(single)


def test_a_failed_batch_leaves_nothing_behind_in_the_workers_memory(
    projected: Settings, base_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker keeps rows between batches; a batch whose transaction fails
    must not leave its changes there, or the retry would find its events already applied.

    Small batches make every learner's rows outlive several of them. The batch that reaches
    the end of a partition fails once, after its rows were changed in memory and written (its
    offsets fail), so nothing later rewrites them; it is rolled back and read again. The
    tables must equal those of the run without a failure."""
    from ledger.broker import end_offsets
    from projections import applying
    from projections.worker import ProjectionWorker

    expected = dumps(projected)
    with fresh_settings(base_settings) as other:
        settings = other.model_copy(update={"topic_prefix": projected.topic_prefix})
        url = services_of(settings).database_url
        bootstrap = services_of(settings).kafka_bootstrap
        ends = end_offsets(bootstrap, settings.events_topic)
        worker = ProjectionWorker(settings, url, bootstrap, max_batch=7)
        save = applying.positions.save
        failed: list[Any] = []

        def failing_once(cur: Any, schema: str, offsets: dict[Any, int], seen: Any) -> None:
            if not failed and any(ends[p] == o for (_, p), o in offsets.items()):
                failed.append(offsets)
                raise psycopg.OperationalError("injected: the database went away mid-batch")
            save(cur, schema, offsets, seen)

        monkeypatch.setattr(applying.positions, "save", failing_once)

        def caught_up() -> bool:
            try:
                worker.step()
            except psycopg.OperationalError:
                worker.recover()  # as the supervisor does
            return projected_to_the_end(settings)

        try:
            wait_for(caught_up, 90, "the projections, one batch failing")
        finally:
            worker.close()
        assert failed, "no batch reached the end of a partition"
        assert dumps(settings) == expected


@pytest.mark.parametrize("pipelined_max", [0, 10_000])
def test_batches_applied_in_pipeline_mode_or_statement_by_statement_give_the_same_tables(
    projected: Settings,
    base_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    pipelined_max: int,
) -> None:
    """The live worker sends a small batch's statements in pipeline mode (new rows by upsert)
    and a large one's one by one (new rows by `COPY`): with every batch one way, then every
    batch the other, the tables equal those the fixture's worker built."""
    from projections import worker as worker_module

    expected = dumps(projected)
    monkeypatch.setattr(worker_module, "PIPELINED_MAX", pipelined_max)
    with fresh_settings(base_settings) as other:
        settings = other.model_copy(update={"topic_prefix": projected.topic_prefix})
        project_all(settings, max_batch=50)
        assert dumps(settings) == expected


def test_a_generation_made_before_a_model_gained_columns_gets_them_and_says_so(
    own_settings: Settings,
) -> None:
    """An older release's live certificates table (without the credential's columns) is given
    them when the worker starts, so new rows can be written; the log says a rebuild fills the
    rows stored before."""
    only = certificates.CREDENTIAL_COLUMNS

    def columns(conn: psycopg.Connection[Any], schema: str) -> set[str]:
        return {
            str(row[0])
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = 'certificates'",
                (schema,),
            )
        }

    with psycopg.connect(services_of(own_settings).database_url, autocommit=True) as conn:
        made = generations.ensure_live(conn, certificates.MODEL)
        for column in only:  # as an older release made it
            conn.execute(
                SQL("ALTER TABLE {}.certificates DROP COLUMN {}").format(
                    Identifier(made.schema), Identifier(column)
                )
            )
        assert not columns(conn, made.schema) & set(only)
        with capture_logs() as logs:
            assert generations.ensure_live(conn, certificates.MODEL) == made
        assert set(only) <= columns(conn, made.schema)
    [said] = [line for line in logs if line["event"] == "projections.columns_added"]
    assert set(said["columns"]) == set(only)
    assert "ledger projections rebuild certificates" in said["action"]
