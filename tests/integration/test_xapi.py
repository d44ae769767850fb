"""xAPI against a real LRS (Ralph): the read scenario's events exported with `ledger export
xapi`, read back from the LRS with `GET /xAPI/statements` and compared statement by statement;
a second export adds nothing; `ledger run xapi` following `ledger.events` into another LRS ends
with the same statements."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bridges.xapi.statements import Statements
from ledger.broker import end_offsets
from ledger.settings import Settings
from projections.events import read_event

from .helpers import cli_env, ledger_cli, read_topic, scenario_projected, services_of, wait_for
from .lrs import Lrs, running_lrs

pytestmark = pytest.mark.integration

#: What the ledger sends and an LRS keeps as sent (it adds `stored`, `authority`, `version`).
SENT = ("id", "actor", "verb", "object", "result", "context")


def expected(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every statement the scenario's events make, by id."""
    bootstrap = services_of(settings).kafka_bootstrap
    total = sum(end_offsets(bootstrap, settings.events_topic).values())
    statements = Statements(settings.issuer_url)
    found = {}
    for record in read_topic(settings, settings.events_topic, expect=total):
        made = statements.of(read_event(record))
        if made is not None:
            found[made["id"]] = made
    return found


def env_for(settings: Settings, lrs: Lrs) -> dict[str, str]:
    return {
        **cli_env(settings),
        "LEDGER_XAPI_USERNAME": lrs.username,
        "LEDGER_XAPI_PASSWORD": lrs.password,
        "LEDGER_XAPI_URL": lrs.url,
    }


def same(kept: dict[str, Any], sent: dict[str, Any]) -> bool:
    moment = datetime.fromisoformat
    return all(kept.get(k) == sent.get(k) for k in SENT) and moment(
        kept["timestamp"].replace("Z", "+00:00")
    ) == moment(sent["timestamp"])


def test_an_export_holds_every_statement_once_and_a_second_adds_nothing(
    own_settings: Settings, tmp_path: Path
) -> None:
    scenario_projected(own_settings)
    statements = expected(own_settings)
    verbs = {s["verb"]["display"]["en-US"] for s in statements.values()}
    assert verbs == {"registered", "passed", "earned", "voided"}  # cy's revocation voids
    with running_lrs(tmp_path) as lrs:
        env = env_for(own_settings, lrs)
        first = json.loads(
            ledger_cli(own_settings, "export", "xapi", "--to", lrs.url, "--json", env=env).stdout
        )
        assert (first["stored"], first["known"], first["conflicts"]) == (len(statements), 0, [])
        kept = {s["id"]: s for s in lrs.statements()}
        # Ralph returns voided statements too (xAPI 1.0.3 says an LRS should not): all of
        # them, then, each as sent.
        assert set(kept) == set(statements)
        for ident, statement in kept.items():
            assert same(statement, statements[ident]), (statement, statements[ident])
        again = json.loads(
            ledger_cli(own_settings, "export", "xapi", "--to", lrs.url, "--json", env=env).stdout
        )
        assert again["resumed"] and again["statements"] == 0
        ada = json.loads(
            ledger_cli(
                own_settings,
                "export",
                "xapi",
                "--to",
                lrs.url,
                "--learner",
                "ada",
                "--json",
                env=env,
            ).stdout
        )
        assert ada["statements"] > 0 and ada["stored"] == 0 and ada["known"] == ada["statements"]
        assert len(lrs.statements()) == len(kept)
        to_file = tmp_path / "statements.jsonl"
        ledger_cli(own_settings, "export", "xapi", "--to", str(to_file), env=env)
        lines = [json.loads(line) for line in to_file.read_text().splitlines()]
        assert {s["id"] for s in lines} == set(statements)


def test_run_xapi_follows_ledger_events_into_an_lrs(own_settings: Settings, tmp_path: Path) -> None:
    scenario_projected(own_settings)
    statements = expected(own_settings)
    with running_lrs(tmp_path) as lrs:
        log = (tmp_path / "xapi.log").open("wb")
        follower = subprocess.Popen(
            [str(Path(sys.executable).with_name("ledger")), "run", "xapi"],
            env=env_for(own_settings, lrs),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: len(lrs.statements()) == len(statements),
                120,
                f"`ledger run xapi` to send every statement ({tmp_path / 'xapi.log'})",
            )
        finally:
            follower.send_signal(signal.SIGTERM)
            follower.wait(30)
            log.close()
        assert {s["id"] for s in lrs.statements()} == set(statements)
