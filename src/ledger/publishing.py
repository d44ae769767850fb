"""`ledger publish`: JSON lines of CloudEvents onto `ledger.intake`, checked before sending.

Every line is validated exactly as the intake worker will validate it, so an operator learns of
a bad line (by its number, with the reason) before anything is sent. Records are keyed by the
CloudEvent subject, which keeps each learner's messages in order on one partition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from commands.cloudevents import STRUCTURED_CONTENT_TYPE, RejectedMessage, parse
from ledger.broker import OutRecord, Producer


@dataclass(frozen=True)
class BadLine:
    number: int
    reason: str
    message: str


@dataclass
class Checked:
    """The result of checking a file: records ready to send and the lines that are not."""

    records: list[OutRecord] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)


def check_lines(lines: Iterable[str | bytes], topic: str) -> Checked:
    """Validate each non-blank line as a structured-mode CloudEvent of a known type."""
    checked = Checked()
    for number, line in enumerate(lines, start=1):
        raw = line.encode() if isinstance(line, str) else line
        if not raw.strip():
            continue
        try:
            message = parse(raw.strip(), [])
        except RejectedMessage as error:
            checked.bad.append(BadLine(number, error.reason, error.message))
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
