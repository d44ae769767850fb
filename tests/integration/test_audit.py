"""Auditors' tools on real Kafka and PostgreSQL: tampering is named, the past is reproducible."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from ledger.audit.history import learner_history
from ledger.audit.verify import verify
from ledger.domain import learner_aggregate_id
from ledger.domain.learner_state import Intent
from ledger.settings import Settings
from projections.read_models.learner_progress import learner_progress

from .. import read_scenario
from ..read_scenario import AT
from ..scenarios import DS
from .helpers import (
    cli_env,
    ledger_cli,
    open_ledger,
    project_all,
    relay_all,
    scenario_projected,
    services_of,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def audited(own_settings: Settings) -> Settings:
    return scenario_projected(own_settings)


def test_verify_names_the_learner_and_event_altered_by_sql(audited: Settings) -> None:
    ledger = open_ledger(audited)
    try:
        clean = verify(ledger, audited, services_of(audited))
        assert clean.ok, clean.mismatches
        assert clean.events == clean.records == 50
        assert clean.learners == 3
        bob = learner_aggregate_id("bob")
        with psycopg.connect(services_of(audited).database_url, autocommit=True) as conn:
            changed = conn.execute(
                "UPDATE ledger_events SET state = convert_to(replace(convert_from(state, 'UTF8'),"
                " '\"49.00\"', '\"4.90\"'), 'UTF8')"
                " WHERE originator_id = %s AND originator_version = 3",
                (bob,),
            ).rowcount
        assert changed == 1
        report = verify(ledger, audited, services_of(audited), read_models=False)
    finally:
        ledger.close()
    assert not report.ok
    altered = f"{bob}:3"
    named = [m for m in report.mismatches if altered in m.message and "bob" in m.message]
    assert {m.check for m in named} == {"chain", "log"}, report.mismatches
    assert all(m.subject == "bob" for m in report.mismatches)
    # The command says the same, and fails.
    result = ledger_cli(audited, "audit", "verify", "--json", check=False)
    assert result.returncode == 1
    assert altered in result.stdout


def test_check_names_a_removed_a_reordered_and_an_edited_line(
    audited: Settings, tmp_path: Path
) -> None:
    export = tmp_path / "ada.jsonl"
    ledger_cli(audited, "audit", "export", "ada", "--to", str(export))
    lines = export.read_text().splitlines()
    assert len(lines) > 30
    assert json.loads(lines[-1])["type"] == "ledger.audit.export_completed.v1"

    # Checking needs neither the database nor the broker: point both somewhere dead.
    offline = {
        **cli_env(audited),
        "LEDGER_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "LEDGER_KAFKA_BOOTSTRAP": "127.0.0.1:1",
    }
    intact = ledger_cli(audited, "audit", "check", str(export), check=False, env=offline)
    assert intact.returncode == 0, intact.stdout + intact.stderr

    aggregate = learner_aggregate_id("ada")
    tampered = list(lines)
    edited = json.loads(tampered[20])
    edited["data"]["at"] = "2026-01-01T00:00:00+00:00"
    tampered[20] = json.dumps(edited)
    tampered[10], tampered[11] = tampered[11], tampered[10]
    del tampered[5]
    line_of = {json.loads(t)["id"]: n for n, t in enumerate(tampered, start=1)}
    bad = tmp_path / "tampered.jsonl"
    bad.write_text("\n".join(tampered) + "\n")
    result = ledger_cli(audited, "audit", "check", str(bad), check=False, env=offline)
    assert result.returncode == 1
    found = result.stdout.replace("\n", " ")
    assert f"removed: event {aggregate}:6 " in found
    moved = f"{aggregate}:11"  # now after version 12
    assert f"reordered: line {line_of[moved]} (event {moved}," in found
    assert f"edited: line {line_of[edited['id']]} (event {edited['id']})" in found
    assert found.count("reordered:") == 1 and found.count("removed:") == 1


def test_as_of_before_and_after_a_certificate_matches_what_support_saw(
    own_settings: Settings,
) -> None:
    settings = own_settings
    url = services_of(settings).database_url
    ledger = open_ledger(settings)
    try:
        read_scenario.build(ledger)  # the catalog, and learners who are not in this test
        with ledger.session() as s:
            s.enroll("dee", DS, Intent.CERTIFICATE, AT)
            s.verify_identity("dee", "government_id", None, AT + timedelta(hours=1))
            s.capture_payment("dee", "d1", "ds-1", Decimal("49.00"), "USD", AT + timedelta(hours=2))
        relay_all(settings)
        project_all(settings)
        with psycopg.connect(url, autocommit=True) as conn:
            seen_then = learner_progress(conn, "dee")
        assert seen_then is not None
        history = learner_history(ledger, "dee")
        moment = history.events[-1].recorded_time

        with ledger.session() as s:
            s.record_grade("dee", "ds-1", Decimal("0.9"), True, AT + timedelta(hours=3))
        relay_all(settings)
        project_all(settings)
        whole = learner_history(ledger, "dee")
        (issued,) = [e for e in whole.events if e.type.startswith("ledger.learner.course_cert")]

        then = learner_history(ledger, "dee", moment)
        before = learner_history(ledger, "dee", issued.recorded_time - timedelta(microseconds=1))
        after = learner_history(ledger, "dee", issued.recorded_time)
    finally:
        ledger.close()
    assert then.state is not None and then.state.progress == seen_then
    assert len(then.events) < len(whole.events)
    assert before.state is not None and before.state.certificates == []
    (why,) = before.state.eligibility
    # The grade was recorded a moment before the certificate it caused (same transaction).
    assert why.missing[0].message == "course ds-1 passed and paid but not certified"
    (why_then,) = then.state.eligibility
    assert why_then.missing[0].message == "course ds-1 not passed yet"
    assert after.state is not None
    (certificate,) = after.state.certificates
    assert (certificate.subject, certificate.status) == ("ds-1", "valid")
    (course,) = [c for c in after.state.progress.enrollments[0].courses if c.course_id == "ds-1"]
    assert course.certified
