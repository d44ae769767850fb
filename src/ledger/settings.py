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
| `LEDGER_API_HOST` | address the HTTP API listens on (`0.0.0.0` in a container) | 127.0.0.1 |
| `LEDGER_API_PORT` | port of the HTTP API (`ledger run api`) | 8080 |
| `LEDGER_PUBLIC_RATE_LIMIT` | requests per client address to the public routes | `60/minute` |
| `LEDGER_SESSION_SECRET` | key signing console sessions, the same for every API process | stored |
| `LEDGER_COOKIE_SECURE` | console cookies only over HTTPS (set it behind TLS) | false |
| `LEDGER_ISSUER_NAME` | the issuer's name on every credential | `Enrollment ledger` |
| `LEDGER_ISSUER_URL` | the API as the world reaches it: `did:web`, credential links | local API |
| `LEDGER_ISSUER_KEY_DIR` | the issuer's signing keys (shared by every API process) | state dir |
| `LEDGER_STATUS_LIST_VALID_S` | how long a published revocation status list stays valid | 3600 |
| `LEDGER_OPENEDX_TOPICS` | the Open edX event bus topics the bridge reads (a,b,...) | see below |
| `LEDGER_OPENEDX_BOOTSTRAP` | the Open edX event bus's Kafka, if not the ledger's | the ledger's |
| `LEDGER_OPENEDX_MAPPING` | the bridge's mapping file (docs/openedx.md) | none |
| `LEDGER_OPENEDX_SCHEMA_REGISTRY` | a Confluent schema registry for writers' schemas | none |
| `LEDGER_XAPI_URL` | the LRS `ledger run xapi` sends statements to (…/xAPI) | none |
| `LEDGER_XAPI_USERNAME`, `LEDGER_XAPI_PASSWORD` | Basic auth for the LRS | none |
| `LEDGER_LOG_FORMAT` | `json` or `console` (default: console on a terminal) | auto |
| `LEDGER_LOG_LEVEL` | `debug`, `info`, `warning` | `info` |
| `LEDGER_KAFKA_LOG` | a file for kafka-python's own debug log (diagnosing the client) | none |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from ledger.errors import ConfigurationError

#: A rate as `LEDGER_PUBLIC_RATE_LIMIT` takes it (and the `limits` package reads it).
_RATE = re.compile(r"\s*[1-9]\d*\s*/\s*(second|minute|hour|day)\s*")
PREFIX = "LEDGER_"

#: The environment `from_env` reads (os.environ unless a test gives its own).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("ledger_environ", default=None)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source, over the mapping `from_env` was given."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        return parse_env_vars(
            os.environ if environ is None else environ,
            self.case_sensitive,
            self.env_ignore_empty,
            self.env_parse_none_str,
        )


class Settings(BaseSettings):
    """Everything a ledger process is told by its environment (`LEDGER_*`, see the table)."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, frozen=True, extra="forbid", env_ignore_empty=True
    )

    state_dir: Path = Field(default=Path(".ledger"))
    database_url: str | None = None
    #: The event store's shards, as PostgreSQL URLs separated by commas or spaces, the first
    #: the database of everything else (read models, staff): `docs/sharding.md`.
    shards: str | None = None
    kafka_bootstrap: str | None = None
    # Six divides evenly among one, two or three consumers, so the intake's processes get
    # equal shares of the learners.
    partitions: int = Field(default=6, ge=1, le=256)
    intake_batch: int = Field(default=2000, ge=1, le=50_000)
    intake_processes: int = Field(default=1, ge=1, le=64)
    projection_processes: int = Field(default=1, ge=1, le=64)
    api_host: str = Field(default="127.0.0.1", min_length=1, max_length=253)
    api_port: int = Field(default=8080, ge=1, le=65535)
    public_rate_limit: str = "60/minute"
    session_secret: SecretStr | None = None
    issuer_name: str = Field(default="Enrollment ledger", min_length=1, max_length=200)
    issuer_url: str = Field(
        default="http://127.0.0.1:8080", pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$"
    )
    issuer_key_dir: Path | None = None
    status_list_valid_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    # The topics edx-event-bus-kafka writes the translated events to, by its defaults.
    openedx_topics: str = (
        "learning-course-enrollment-lifecycle,learning-course-passing-status,"
        "learning-course-grades,learning-idv-attempts,learning-certificate-lifecycle"
    )
    openedx_bootstrap: str | None = None
    openedx_mapping: Path | None = None
    openedx_schema_registry: str | None = Field(default=None, pattern=r"^https?://\S+$")
    xapi_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    xapi_username: str | None = None
    xapi_password: SecretStr | None = None
    cookie_secure: bool = False
    topic_prefix: str = ""
    log_format: str | None = Field(default=None, pattern="^(json|console)$")
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")
    kafka_log: Path | None = None

    @field_validator("public_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        if not _RATE.fullmatch(value):
            raise ValueError(f"{value!r} is not a rate: write it as N/second, N/minute or N/hour")
        return value.strip()

    @field_validator("session_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("too short to sign sessions safely: give at least 32 characters")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments (`model_copy`, tests), then the environment; no `.env` file."""
        return (init_settings, _Environment(settings_cls))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the `LEDGER_*` variables; a bad value is reported with the variable's name,
        all of them in one line."""
        token = _ENVIRON.set(environ)
        try:
            return cls()
        except ValidationError as error:
            problems = "; ".join(
                f"{PREFIX}{str(e['loc'][0]).upper()}: {e['msg']}" for e in error.errors()
            )
            raise ConfigurationError(f"bad ledger environment: {problems}") from None
        finally:
            _ENVIRON.reset(token)

    @property
    def shard_urls(self) -> list[str]:
        """`LEDGER_SHARDS` as a list (empty when not set: one shard, the database)."""
        return [url for url in re.split(r"[\s,]+", self.shards or "") if url]

    @property
    def state_path(self) -> Path:
        """The state directory as an absolute path (workers may change directory)."""
        return self.state_dir.expanduser().resolve()

    @property
    def issuer_keys(self) -> Path:
        """Where the issuer's signing keys are kept."""
        return (self.issuer_key_dir or self.state_path / "issuer").expanduser().resolve()

    @property
    def openedx_topic_list(self) -> list[str]:
        return [t.strip() for t in self.openedx_topics.split(",") if t.strip()]

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


@dataclass(frozen=True)
class Services:
    """Where PostgreSQL and Kafka are: resolved once, by the composition root
    (`ledger.entrypoints.bootstrap.services`), and handed to whatever needs them.

    `Settings` says what the environment asks for (perhaps nothing: the embedded servers);
    this says where they actually are, the embedded PostgreSQL's socket found.
    """

    database_url: str
    kafka_bootstrap: str
    #: The event store's shards after the first, which is `database_url` (`docs/sharding.md`).
    more_shards: tuple[str, ...] = ()

    @property
    def shard_urls(self) -> tuple[str, ...]:
        """Every shard of the event store, the first holding everything else too."""
        return (self.database_url, *self.more_shards)

    def with_database(self, database_url: str, *more_shards: str) -> Services:
        """The same broker with other databases (scratch ones of a test or benchmark)."""
        return Services(database_url, self.kafka_bootstrap, more_shards)
