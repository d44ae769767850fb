"""What every `ledger` command shares: where it prints, how it reads its settings and finds the
services, how it checks an id, and how `--json` prints.

Imports here are light on purpose (typer only): this module is loaded for every command,
`ledger --help` included, and everything heavy (rich, pydantic, psycopg, kafka-python, the
domain) is imported by the command that needs it, when it runs (`ledger bench cli` measures the
result). Even the consoles are made on first use: `ledger learner show ID --json` never loads
rich at all.

`--json` output, the same for every command: a single answer (a learner, a certificate, a
report) is one JSON document; a list (retention rows, rejections, read-model lags) is JSON
Lines, one object per line, so it streams and greps.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer
import typer.main
from typer.core import TyperGroup

if TYPE_CHECKING:
    from psycopg import Connection
    from rich.console import Console
    from typer import _click as click

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


class Commands(TyperGroup):
    """A group of commands, as `ledger` shows and finds them.

    Its help lists each command's whole summary, wrapped, where click cuts it to what fits on
    one line and adds "..." (at 80 columns most of ours lost their second half).

    A subclass may name groups that live in modules of their own in `lazy` (name to
    "module:attribute" of their `typer.Typer`): such a module is imported, and its commands
    built, only when the group is named on the command line (or help lists it). Building every
    command of every group on every start made each command pay for all the others, and the
    more the ledger grows the more that costs.
    """

    lazy: ClassVar[dict[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(dict.fromkeys([*super().list_commands(ctx), *self.lazy]))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in self.lazy:
            from importlib import import_module  # noqa: PLC0415

            module, _, attribute = self.lazy[cmd_name].partition(":")
            group = typer.main.get_group(getattr(import_module(module), attribute))
            group.name = cmd_name
            self.add_command(group, cmd_name)
            found = group
        return found

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=sys.maxsize)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def command_group(
    help: str,
    *,
    no_args_is_help: bool = True,
    cls: type[Commands] = Commands,
    **options: Any,
) -> typer.Typer:
    """A group of `ledger` commands, all made alike: help when given no command, and help text
    formatted the plain way (click's), as wide as the terminal up to 100 columns. typer's rich
    help loads rich and markdown-it to draw boxes: 40% of `ledger --help`'s time, for frames
    around the same words."""
    return typer.Typer(
        help=help,
        cls=cls,
        no_args_is_help=no_args_is_help,
        rich_markup_mode=None,
        add_completion=False,
        context_settings={"max_content_width": 100},
        **options,
    )


@cache
def out() -> Console:
    """Where answers go (standard output). Off a terminal rich assumes 80 columns and squeezes
    tables; logs and CI output are wider, so it gets 140."""
    from rich.console import Console  # noqa: PLC0415 - rich only when something is printed

    return Console() if sys.stdout.isatty() else Console(width=140)


@cache
def err() -> Console:
    """Where errors and notes go (standard error): one line each however long (soft wrap leaves
    wrapping to the terminal), and no colouring of what looks like numbers or paths in them."""
    from rich.console import Console  # noqa: PLC0415

    return Console(stderr=True, soft_wrap=True, highlight=False)


def settings() -> Settings:
    """The settings from the environment, logging configured from them."""
    from ledger.logs import configure_logging  # noqa: PLC0415
    from ledger.settings import Settings  # noqa: PLC0415 - pydantic only when a command runs

    found = Settings.from_env()
    configure_logging(found.log_format, found.log_level, found.kafka_log)
    return found


class Ending:
    """Whether this process may end as soon as its command has printed its answer.

    Python's own ending (clearing every module, collecting what they held) took a quarter of
    `ledger learner show`'s time: pydantic, psycopg and typer leave a great deal to clear. A
    command that only reads and prints (support staff's questions, `--help`) has nothing to
    finish, so `main` flushes its output and ends the process there (`os._exit`). Any other
    command ends the usual way, so that what it started (threads, child processes, `atexit`
    work, files) is finished properly: the root callback sets `fast` to False before a command
    runs, and `question_settings` sets it back for the commands that only ask.
    """

    fast: ClassVar[bool] = True


def question_settings() -> Settings:
    """Settings for a command that only asks a question and prints the answer (support
    staff's): no logging set up (structlog is not even loaded), and the process ends as soon as
    the answer is out (`Ending`)."""
    from ledger.settings import Settings  # noqa: PLC0415

    Ending.fast = True
    return Settings.from_env()


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


def broker_only(found: Settings) -> str:
    """Where Kafka is, for a command that needs no database (`ledger publish`)."""
    from ledger.entrypoints import bootstrap  # noqa: PLC0415

    return bootstrap.broker_only(found)


def record_read(conn: Connection[Any], learner_id: str, what: str) -> None:
    """Put on record that whoever runs this command read `learner_id`'s data through `what`
    (`ledger learner show`...): the CLI's reads are on record beside the API's and the
    console's, under the name of the user running it (`cli:USER`)."""
    import getpass  # noqa: PLC0415

    from ledger.entrypoints.staff.reads import Reader, record  # noqa: PLC0415

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        import os  # noqa: PLC0415

        user = f"uid {os.getuid()}"
    record(conn, Reader(f"cli:{user}", None, "cli"), learner_id, what)


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
RebuildProcesses = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=64,
        help="Processes rebuilding, sharing the partitions (default: one per core once "
        "ledger.events holds 50,000 records, else one).",
    ),
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
    err().print(message, markup=False)
    return typer.Exit(4)
