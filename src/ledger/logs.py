"""Structured logging: one rich line per message handled, JSON off a terminal, readable on one.

Workers bind the message's context (topic, partition, offset, message id) once and log one line
when they are done with it, so an operator can follow any message with one grep.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import structlog


def _add_pid(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    # `ledger run --processes N` writes N processes' lines to one stream: say whose each is.
    event["pid"] = os.getpid()
    return event


def configure_logging(
    log_format: str | None = None, level: str = "info", kafka_log: Path | None = None
) -> None:
    """Set up structlog (and the standard library loggers of Kafka and psycopg) once.

    With `kafka_log`, kafka-python's own debug log (every request and response, every state
    change of the group member) goes to that file: how a stall of its coordinator was
    diagnosed (`ledger.liveness`)."""
    use_json = log_format == "json" or (log_format is None and not sys.stderr.isatty())
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_pid,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer]
        if use_json
        else [*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # One write per line (message and newline together): the processes of
        # `ledger run --processes N` share the stream, and must not interleave their lines.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # kafka-python logs every failed reconnect at WARNING/ERROR; while a broker is away that is
    # one line per try. Our workers log the outage themselves, once per failure.
    # The standard library's loggers (uvicorn, psycopg's pool, kafka-python) write through the
    # same renderer, so a JSON log stays JSON whatever wrote the line.
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([structlog.processors.format_exc_info] if use_json else []),
                renderer,
            ],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    kafka = logging.getLogger("kafka")
    kafka.setLevel(logging.CRITICAL)
    if kafka_log is not None:
        handler = logging.FileHandler(kafka_log)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
        )
        kafka.addHandler(handler)
        kafka.setLevel(logging.DEBUG)
        kafka.propagate = False


def get_logger(name: str) -> Any:
    """A structlog logger named after the module using it."""
    return structlog.get_logger(name)
