"""Structured logging: one rich line per message handled, JSON off a terminal, readable on one.

Workers bind the message's context (topic, partition, offset, message id) once and log one line
when they are done with it, so an operator can follow any message with one grep.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import structlog


def _add_pid(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    # `ledger run --processes N` writes N processes' lines to one stream: say whose each is.
    event["pid"] = os.getpid()
    return event


def _json_line(event: dict[str, Any], **kwargs: Any) -> bytes:
    """One log line's JSON, by orjson: about half the time of the standard library's `json`
    for the line a worker writes per message (`docs/performance.md`). Whatever orjson cannot
    write (a string with a lone surrogate, an integer past 64 bits) goes through `json`, so
    no value makes a log call fail."""
    try:
        return orjson.dumps(event, default=kwargs.get("default"), option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(event, default=repr).encode("utf-8", errors="backslashreplace")


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
    # One write per line (message and newline together): the processes of
    # `ledger run --processes N` share the stream, and must not interleave their lines.
    binary = getattr(sys.stderr, "buffer", None)  # none on a stream replaced by a test
    processors: list[Any]
    factory: structlog.WriteLoggerFactory | structlog.BytesLoggerFactory
    if not use_json:
        processors, factory = [*shared, renderer], structlog.WriteLoggerFactory(file=sys.stderr)
    elif binary is not None:
        processors = [
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_json_line),
        ]
        factory = structlog.BytesLoggerFactory(file=binary)
    else:
        processors = [*shared, structlog.processors.format_exc_info, renderer]
        factory = structlog.WriteLoggerFactory(file=sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=factory,
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
