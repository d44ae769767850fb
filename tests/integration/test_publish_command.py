"""`ledger publish` as a producer service runs it: on a machine with a broker and no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.settings import Settings

from .helpers import cli_env, ledger_cli, read_topic, services_of

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).parents[2] / "schemas" / "inbound"


def event(n: int) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": f"publish-{n}",
        "source": "urn:publish-test",
        "type": "ledger.aid.granted.v1",
        "time": "2026-03-02T14:30:00+00:00",
        "subject": "quinn",
        "data": {"learner_id": "quinn", "course_id": f"ds-{n}"},
    }


def test_publish_needs_only_the_broker_and_takes_a_document_an_array_or_lines(
    own_settings: Settings, tmp_path: Path
) -> None:
    env = cli_env(own_settings)
    # No database at all: an empty state directory (no embedded PostgreSQL) and no URL.
    env["LEDGER_STATE_DIR"] = str(tmp_path / "no-ledger-here")
    env["LEDGER_DATABASE_URL"] = ""
    env["LEDGER_KAFKA_BOOTSTRAP"] = services_of(own_settings).kafka_bootstrap

    example = EXAMPLES / "ledger.aid.granted.v1.example.json"
    array = tmp_path / "array.json"
    array.write_text(json.dumps([event(1), event(2)], indent=2))
    lines = tmp_path / "events.jsonl"
    lines.write_text(json.dumps(event(3)) + "\n" + json.dumps(event(4)) + "\n")
    for source, sent in ((example, 1), (array, 2), (lines, 2)):
        done = ledger_cli(own_settings, "publish", str(source), env=env, check=False)
        assert done.returncode == 0, done.stderr
        assert f"published {sent} message(s) to {own_settings.intake_topic}" in done.stdout

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(event(5)) + "\n" + json.dumps({**event(6), "type": "nope"}) + "\n")
    refused = ledger_cli(own_settings, "publish", str(bad), env=env, check=False)
    assert refused.returncode == 2
    assert "line 2: unknown_type" in refused.stderr
    assert "nothing published" in refused.stderr

    records = read_topic(own_settings, own_settings.intake_topic, expect=5, timeout_s=60)
    assert sorted((r.key, json.loads(r.value or b"{}")["id"]) for r in records) == [
        (b"learner-0042", "aid-0001"),
        (b"quinn", "publish-1"),
        (b"quinn", "publish-2"),
        (b"quinn", "publish-3"),
        (b"quinn", "publish-4"),
    ]
