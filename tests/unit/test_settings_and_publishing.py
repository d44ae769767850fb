"""Settings name the bad variable; `ledger publish` reports bad lines by number."""

from __future__ import annotations

import pytest

from commands.cloudevents import structured
from ledger.entrypoints.cli.publish import check_lines
from ledger.errors import ConfigurationError
from ledger.settings import Settings

from .helpers import T0


def test_settings_defaults_and_prefix() -> None:
    settings = Settings.from_env({"LEDGER_TOPIC_PREFIX": "t1."})
    assert settings.topics == ("t1.ledger.intake", "t1.ledger.events", "t1.ledger.rejections")
    assert settings.group_id("intake") == "t1.ledger-intake"
    assert settings.partitions == 6


def test_a_bad_setting_names_its_variable() -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_PARTITIONS"):
        Settings.from_env({"LEDGER_PARTITIONS": "many"})


def test_check_lines_keys_by_subject_and_reports_bad_lines() -> None:
    good = structured(
        "ledger.learner.enrolled.v1",
        "urn:t",
        "1",
        T0,
        "ada",
        {"learner_id": "ada", "specialization_id": "ds", "intent": "audit"},
    )
    checked = check_lines([good, b"", b"not json", b'{"specversion": "1.0"}'], "intake")
    assert [r.key for r in checked.records] == [b"ada"]
    assert [(b.number, b.reason) for b in checked.bad] == [(3, "not_json"), (4, "not_cloudevent")]


def test_kraft_cluster_ids_never_look_like_an_option() -> None:
    from ledger.stack.kafka import _cluster_id

    ids = [_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
