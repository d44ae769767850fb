"""The `ledger` command as a new user meets it, run as a process (no services needed): help
without type tags that lists whole summaries, `--version`, one line for a bad setting or an
unreachable database, `publish` taking a shipped example and explaining itself on a terminal,
and a start that loads only what the command needs (`ledger bench cli` times it)."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.entrypoints.cli.publish import USAGE, check_input

LEDGER = str(Path(sys.executable).with_name("ledger"))
ROOT = Path(__file__).resolve().parents[2]
#: What no command but those that need them may load at start (`python -X importtime`).
HEAVY = ("psycopg", "pydantic", "kafka", "eventsourcing", "fastapi", "rich", "structlog")


def ledger(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LEDGER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80", **(env or {})},
        check=False,
    )


def loaded_modules(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages a `ledger` command imports, from Python's own import log."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", LEDGER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)$", done.stderr, re.M)
    assert names, done.stderr[-2000:]
    return {name.split(".")[0] for name in names}


def test_help_lists_every_group_whole_and_tags_no_option() -> None:
    done = ledger("--help")
    assert done.returncode == 0, done.stderr
    for group in ("learner", "certificate", "stats", "projections", "rejections", "audit"):
        assert re.search(rf"^  {group}\s+\S", done.stdout, re.M), (group, done.stdout)
    commands = done.stdout.split("Commands:")[1]
    assert "..." not in commands  # summaries wrap, they are not cut
    assert "the xAPI follower) until SIGINT/SIGTERM" in " ".join(commands.split())
    assert "<bool>" not in done.stdout and "<str>" not in done.stdout
    audit = ledger("audit", "history", "--help").stdout
    assert "<bool>" not in audit and "<str>" not in audit and "<int>" not in audit
    assert re.search(r"--as-of \S+", audit), audit  # a value shows its name, not its type


def test_a_group_named_alone_shows_its_commands() -> None:
    done = ledger("stats")
    assert "retention" in done.stdout + done.stderr
    assert "Usage: ledger stats [OPTIONS] COMMAND" in done.stdout + done.stderr


def test_version() -> None:
    done = ledger("--version")
    assert done.returncode == 0
    assert re.fullmatch(r"ledger \d+\.\d+\.\d+\S*\n", done.stdout), done.stdout


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url at all", "LEDGER_DATABASE_URL is not a PostgreSQL URL"),
        ("postgresql://127.0.0.1:1/ledger", "PostgreSQL did not answer"),
    ],
)
def test_a_bad_database_url_is_one_line(url: str, says: str) -> None:
    done = ledger("learner", "show", "ada", env={"LEDGER_DATABASE_URL": url})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


def test_an_id_postgresql_cannot_hold_is_a_usage_error() -> None:
    done = ledger("learner", "show", "ada\x01\udcff", env={"LEDGER_DATABASE_URL": "x"})
    assert done.returncode == 2
    assert "LEARNER" in done.stderr and "Traceback" not in done.stderr


def test_publish_takes_a_shipped_pretty_printed_example() -> None:
    examples = sorted((ROOT / "schemas" / "inbound").glob("*.example.json"))
    assert examples
    for example in examples:
        checked = check_input(example.read_bytes(), "intake")
        assert not checked.bad, (example.name, checked.bad)
        assert len(checked.records) == 1, example.name
    array = json.dumps([json.loads(e.read_text()) for e in examples], indent=2).encode()
    assert len(check_input(array, "intake").records) == len(examples)


def test_publish_with_no_broker_says_so_at_once_and_needs_no_database(tmp_path: Path) -> None:
    example = ROOT / "schemas" / "inbound" / "ledger.aid.granted.v1.example.json"
    done = ledger(
        "publish",
        str(example),
        env={
            "LEDGER_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # nothing listens on port 1
            "LEDGER_STATE_DIR": str(tmp_path),  # no embedded PostgreSQL here either
            "LEDGER_DATABASE_URL": "",
        },
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ledger: Kafka at 127.0.0.1:1 does not answer: nothing published; check that the broker "
        "runs (`ledger stack status`) or set LEDGER_KAFKA_BOOTSTRAP"
    ]


def test_publish_on_a_terminal_with_nothing_piped_says_how_to_use_it() -> None:
    parent, child = pty.openpty()
    try:
        done = subprocess.run(
            [LEDGER, "publish"],
            check=False,
            stdin=child,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(child)
        os.close(parent)
    assert done.returncode == 2
    assert " ".join(done.stderr.split()) == " ".join(USAGE.split()), done.stderr


def test_help_loads_nothing_heavy() -> None:
    loaded = loaded_modules("--help")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_support_question_loads_neither_broker_nor_application() -> None:
    # All the way to connecting (refused: nothing listens on port 1), then one line of error.
    loaded = loaded_modules(
        "learner", "show", "ada", env={"LEDGER_DATABASE_URL": "postgresql://127.0.0.1:1/x"}
    )
    assert "psycopg" in loaded  # it did get as far as the database
    assert not loaded & {"kafka", "eventsourcing", "fastapi", "structlog"}, loaded


def test_the_demos_next_steps_read_whole_on_an_80_column_terminal() -> None:
    from rich.console import Console

    from ledger.entrypoints.demo.run import print_next_steps
    from ledger.settings import Settings

    settings = Settings()
    console = Console(width=80, record=True, file=io.StringIO())
    print_next_steps(console, settings, ("learner-0108", "cet-effective-teaching"))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert all(len(line) <= 80 for line in lines)
    for command in (
        "ledger learner why learner-0108 cet-effective-teaching",
        "ledger tokens create --name me --role support --role auditor",
        "ledger run api",
    ):
        assert command in lines  # a command is never cut or wrapped
    console_url = f"http://{settings.api_host}:{settings.api_port}/console"
    assert any(console_url in line for line in lines)
    assert any("still running" in line for line in lines)
