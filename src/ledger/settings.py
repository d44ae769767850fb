"""Configuration, read once from the environment into a frozen object, in the entry points only.

| variable | meaning | default |
|---|---|---|
| `LEDGER_STATE_DIR` | embedded PostgreSQL, Kafka jars and data | `./.ledger` |
| `LEDGER_DATABASE_URL` | a PostgreSQL server to use instead of the embedded one | embedded |
| `LEDGER_KAFKA_BOOTSTRAP` | Kafka servers to use instead of the local broker | local broker |
| `LEDGER_PARTITIONS` | partitions of each ledger topic when `stack up` creates it | 6 |
| `LEDGER_INTAKE_BATCH` | most messages the intake decides in one transaction | 2000 |
| `LEDGER_INTAKE_PROCESSES` | intake worker processes `ledger run` starts (one per core) | 1 |
| `LEDGER_PROJECTION_PROCESSES` | projection worker processes `ledger run` starts | 1 |
| `LEDGER_TOPIC_PREFIX` | prefix of the three topic names (tests use it to stay apart) | empty |
| `LEDGER_API_PORT` | port of the HTTP API (`ledger run api`), on 127.0.0.1 | 8080 |
| `LEDGER_LOG_FORMAT` | `json` or `console` (default: console on a terminal) | auto |
| `LEDGER_LOG_LEVEL` | `debug`, `info`, `warning` | `info` |
| `LEDGER_KAFKA_LOG` | a file for kafka-python's own debug log (diagnosing the client) | none |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.errors import ConfigurationError

LOCAL_KAFKA_BOOTSTRAP = "127.0.0.1:9092"


class Settings(BaseModel):
    """Everything a ledger process is told by its environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state_dir: Path = Field(default=Path(".ledger"))
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    # Six divides evenly among one, two or three consumers, so the intake's processes get
    # equal shares of the learners.
    partitions: int = Field(default=6, ge=1, le=256)
    intake_batch: int = Field(default=2000, ge=1, le=50_000)
    intake_processes: int = Field(default=1, ge=1, le=64)
    projection_processes: int = Field(default=1, ge=1, le=64)
    api_port: int = Field(default=8080, ge=1, le=65535)
    topic_prefix: str = ""
    log_format: str | None = Field(default=None, pattern="^(json|console)$")
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")
    kafka_log: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the `LEDGER_*` variables; a bad value is reported with the variable's name."""
        env = os.environ if environ is None else environ
        names = {
            "state_dir": "LEDGER_STATE_DIR",
            "database_url": "LEDGER_DATABASE_URL",
            "kafka_bootstrap": "LEDGER_KAFKA_BOOTSTRAP",
            "partitions": "LEDGER_PARTITIONS",
            "intake_batch": "LEDGER_INTAKE_BATCH",
            "intake_processes": "LEDGER_INTAKE_PROCESSES",
            "projection_processes": "LEDGER_PROJECTION_PROCESSES",
            "api_port": "LEDGER_API_PORT",
            "topic_prefix": "LEDGER_TOPIC_PREFIX",
            "log_format": "LEDGER_LOG_FORMAT",
            "log_level": "LEDGER_LOG_LEVEL",
            "kafka_log": "LEDGER_KAFKA_LOG",
        }
        values = {field: env[var] for field, var in names.items() if env.get(var)}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(f"{names[str(e['loc'][0])]}: {e['msg']}" for e in error.errors())
            raise ConfigurationError(f"bad ledger environment: {problems}") from None

    @property
    def state_path(self) -> Path:
        """The state directory as an absolute path (workers may change directory)."""
        return self.state_dir.expanduser().resolve()

    @property
    def intake_topic(self) -> str:
        return f"{self.topic_prefix}ledger.intake"

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}ledger.events"

    @property
    def rejections_topic(self) -> str:
        return f"{self.topic_prefix}ledger.rejections"

    def group_id(self, worker: str) -> str:
        """The consumer group of a worker; prefixed like the topics, so test runs stay apart."""
        return f"{self.topic_prefix}ledger-{worker}"

    @property
    def topics(self) -> tuple[str, str, str]:
        return (self.intake_topic, self.events_topic, self.rejections_topic)
