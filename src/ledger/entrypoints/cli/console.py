"""What every `ledger` command shares: where it prints, how it reads its settings and finds the
services, how it checks an id, and how `--json` prints.

Imports here are light on purpose (typer and rich only): this module is loaded for every command,
`ledger --help` included, and everything heavy (pydantic, psycopg, kafka-python, the domain) is
imported by the command that needs it, when it runs (`ledger bench cli` measures the result).

`--json` output, the same for every command: a single answer (a learner, a certificate, a
report) is one JSON document; a list (retention rows, rejections, read-model lags) is JSON
Lines, one object per line, so it streams and greps.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ledger.settings import Services, Settings


def _plain_help() -> None:
    """Help without a type tag after every option.

    typer 0.29 writes `<bool>` after every flag and `<str>`, `<int>` after every value: noise
    to a person reading `--help` (and `--json <bool>` reads as if it took a value). Flags show
    nothing; an option that takes a value shows its metavar, or its name in capitals
    (`--reason REASON`); an argument shows only its name.
    """
    from typer.core import TyperArgument, TyperOption  # noqa: PLC0415

    def option_type(self: TyperOption, ctx: object) -> str | None:
        if self.is_flag:
            return None
        return self.metavar or (self.name or "value").upper()

    def argument_type(self: TyperArgument, ctx: object) -> str | None:
        return None

    TyperOption.display_type_rich = option_type  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_type  # type: ignore[method-assign,assignment]


_plain_help()

# Off a terminal rich assumes 80 columns and squeezes tables; logs and CI output are wider.
out = Console() if sys.stdout.isatty() else Console(width=140)
#: Errors and notes: one line each however long (soft wrap leaves wrapping to the terminal),
#: and no colouring of what looks like numbers or paths in them.
err = Console(stderr=True, soft_wrap=True, highlight=False)


def settings(*, logs: bool = True) -> Settings:
    """The settings from the environment, logging configured from them; a command that only
    asks a question and answers it (support staff's) passes `logs=False` and skips loading
    structlog."""
    from ledger.settings import Settings  # noqa: PLC0415 - pydantic only when a command runs

    found = Settings.from_env()
    if logs:
        from ledger.logs import configure_logging  # noqa: PLC0415

        configure_logging(found.log_format, found.log_level, found.kafka_log)
    return found


def quiet_settings() -> Settings:
    """Settings for a command that talks to a person or measures: worker logs at warning, or
    they would bury its output (or be what is measured)."""
    from ledger.logs import configure_logging  # noqa: PLC0415
    from ledger.settings import Settings  # noqa: PLC0415

    found = Settings.from_env()
    configure_logging(found.log_format, "warning", found.kafka_log)
    return found


def services(found: Settings) -> Services:
    """Where PostgreSQL and Kafka are: the composition root's answer, once per command."""
    from ledger.entrypoints import bootstrap  # noqa: PLC0415

    return bootstrap.services(found)


def checked_id(value: str | None) -> str | None:
    """An id as the read models can look it up, or a clear error (no NUL, valid UTF-8: a shell
    can pass bytes that are not, which Python keeps as surrogates PostgreSQL cannot take)."""
    if value is not None and ("\x00" in value or not value.isascii()):
        from commands.limits import storable  # noqa: PLC0415 - only for unusual text

        try:
            storable(value)
        except ValueError as error:
            raise typer.BadParameter(f"{value!r} {error}") from None
    return value


LearnerArg = Annotated[
    str, typer.Argument(help="The learner's id.", callback=checked_id, metavar="LEARNER")
]
SpecializationArg = Annotated[
    str,
    typer.Argument(help="The specialization's id.", callback=checked_id, metavar="SPECIALIZATION"),
]
CodeArg = Annotated[
    str, typer.Argument(help="A verification code.", callback=checked_id, metavar="CODE")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (one document; JSON Lines for lists).")
]


def print_document(document: Any) -> None:
    """One answer as one JSON document: a pydantic model, or anything `json` can write."""
    if hasattr(document, "model_dump_json"):
        sys.stdout.write(document.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def print_lines(items: Iterable[Mapping[str, Any] | Any]) -> None:
    """A list as JSON Lines: one compact object per line."""
    for item in items:
        if hasattr(item, "model_dump_json"):
            sys.stdout.write(item.model_dump_json() + "\n")
        else:
            sys.stdout.write(json.dumps(item, default=str) + "\n")


def not_found(message: str) -> typer.Exit:
    """Say what was not found, and exit 4 (the exit status of every "no such ..." answer)."""
    err.print(message, markup=False)
    return typer.Exit(4)
