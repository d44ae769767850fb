"""`ledger publish`: CloudEvents onto `ledger.intake`, each checked before anything is sent.

The input is JSON Lines (one structured-mode CloudEvent per line), or one JSON document: an event
(pretty-printed, as the examples in `schemas/inbound/` are) or an array of events. Every event is
validated exactly as the intake worker will validate it, so an operator learns of a bad one (by
its line, or its place in the array, with the reason) before anything is sent. Records are keyed
by the CloudEvent subject, which keeps each learner's messages in order on one partition.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.entrypoints.cli.console import broker_only, err, out, settings

if TYPE_CHECKING:
    from ledger.broker import OutRecord, Producer

USAGE = (
    "ledger publish reads CloudEvents from a file or from stdin: `ledger publish events.jsonl`, "
    "`ledger publish schemas/inbound/ledger.learner.enrolled.v1.example.json`, or "
    "`... | ledger publish -`; JSON Lines, one event, or an array of events"
)


@dataclass(frozen=True)
class LineRejection:
    """A bad event: its line (JSON Lines) or its place in the array (from 1), and why."""

    number: int
    reason: str
    message: str
    where: str = "line"


@dataclass
class Checked:
    """The result of checking a file: records ready to send and the lines that are not."""

    records: list[OutRecord] = field(default_factory=list)
    bad: list[LineRejection] = field(default_factory=list)


def check_input(raw: bytes, topic: str) -> Checked:
    """JSON Lines, or one JSON document (an event, or an array of them), checked."""
    import orjson  # noqa: PLC0415 - only when publishing

    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return check_lines(raw.splitlines(), topic)
    if isinstance(document, list):
        checked = check_lines((orjson.dumps(item) for item in document), topic)
        return Checked(
            checked.records,
            [LineRejection(b.number, b.reason, b.message, "event") for b in checked.bad],
        )
    if isinstance(document, dict):
        return check_lines([orjson.dumps(document)], topic)
    return check_lines(raw.splitlines(), topic)


def check_lines(lines: Iterable[str | bytes], topic: str) -> Checked:
    """Validate each non-blank line as a structured-mode CloudEvent of a known type."""
    from commands.cloudevents import STRUCTURED_CONTENT_TYPE, RejectionError, parse  # noqa: PLC0415
    from ledger.broker import OutRecord  # noqa: PLC0415

    checked = Checked()
    for number, line in enumerate(lines, start=1):
        raw = line.encode() if isinstance(line, str) else line
        if not raw.strip():
            continue
        try:
            message = parse(raw.strip(), [])
        except RejectionError as error:
            checked.bad.append(LineRejection(number, error.reason, error.message))
            continue
        checked.records.append(
            OutRecord(
                topic=topic,
                key=message.subject.encode(),
                value=raw.strip(),
                headers=[("content-type", STRUCTURED_CONTENT_TYPE.encode())],
            )
        )
    return checked


def publish(producer: Producer, records: list[OutRecord], chunk: int = 5000) -> int:
    """Send the records in order, waiting for acknowledgement; return how many were sent."""
    for start in range(0, len(records), chunk):
        producer.send_all(records[start : start + chunk])
    return len(records)


def publish_command(
    source: Annotated[
        str, typer.Argument(help="A file of CloudEvents, or - for stdin.", metavar="FILE")
    ] = "-",
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Publish the valid events even if some are bad.")
    ] = False,
) -> None:
    """Publish structured-mode CloudEvents (JSON Lines, one event, or an array) onto
    ledger.intake, each checked first."""
    if source == "-" and sys.stdin.isatty():
        err().print(USAGE, markup=False)
        raise typer.Exit(2)
    from ledger.broker import BrokerUnavailableError, Producer, reachable  # noqa: PLC0415
    from ledger.errors import LedgerError  # noqa: PLC0415

    found = settings()
    if source == "-":
        raw = sys.stdin.buffer.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise LedgerError(f"{source}: no such file")
        raw = path.read_bytes()
    checked = check_input(raw, found.intake_topic)
    for bad in checked.bad:
        err().print(f"{bad.where} {bad.number}: {bad.reason}: {bad.message}", markup=False)
    if checked.bad and not skip_bad:
        err().print(
            f"{len(checked.bad)} bad event(s); nothing published (fix them, or pass --skip-bad)"
        )
        raise typer.Exit(2)
    if not checked.records:
        err().print("no event in the input; " + USAGE, markup=False)
        raise typer.Exit(2)
    bootstrap = broker_only(found)
    if not reachable(bootstrap, timeout_s=3.0):  # at once, not after the producer's retries
        raise BrokerUnavailableError(
            f"Kafka at {bootstrap} does not answer: nothing published; check that the broker "
            "runs (`ledger stack status`) or set LEDGER_KAFKA_BOOTSTRAP"
        )
    producer = Producer(bootstrap, client_id="ledger-publish")
    try:
        sent = publish(producer, checked.records)
    finally:
        producer.close()
    out().print(
        f"published {sent} message(s) to {found.intake_topic}"
        + (f"; skipped {len(checked.bad)} bad event(s)" if checked.bad else "")
    )
    if checked.bad:
        raise typer.Exit(2)
