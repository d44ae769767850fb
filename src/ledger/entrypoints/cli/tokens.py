"""Operators' commands for staff access: make a token (shown once), list them, revoke one.

Whoever runs these reaches PostgreSQL with the database's own credentials, which is what makes
them the ones who may hand out tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ledger.entrypoints.cli.console import (
    JsonOption,
    command_group,
    err,
    out,
    print_document,
    print_lines,
    services,
    settings,
)

if TYPE_CHECKING:
    from ledger.entrypoints.staff.tokens import StaffToken

tokens_app = command_group("Staff tokens for the API and the console: create, list, revoke.")


def _roles_help() -> str:
    return (
        "A role the token holds (repeat for more): support, finance, auditor, operator, publisher."
    )


@tokens_app.command("create")
def tokens_create(
    name: Annotated[
        str,
        typer.Option(
            "--name", help="Whose token it is (shown in the access log and the record of reads)."
        ),
    ],
    role: Annotated[list[str], typer.Option("--role", help=_roles_help())],
    expires: Annotated[
        int | None,
        typer.Option(
            min=1, max=3650, metavar="DAYS", help="Days until it expires (default: never)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Make a token and print it once: only its hash is kept, so it cannot be shown again."""
    from datetime import timedelta  # noqa: PLC0415

    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from ledger.entrypoints.staff import tokens  # noqa: PLC0415
    from ledger.entrypoints.staff.roles import parse_roles  # noqa: PLC0415

    try:
        roles = parse_roles(role)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--role") from None
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise typer.BadParameter(
            "give a name of 1 to 100 printable characters", param_hint="--name"
        )
    with bootstrap.connect(services(settings())) as conn:
        issued = tokens.issue(conn, name, roles, timedelta(days=expires) if expires else None)
    token = issued.token
    if as_json:
        print_document({**_token_json(token), "token": issued.secret})
        return
    out().print(issued.secret, markup=False, highlight=False, soft_wrap=True)
    err().print(
        f"token {token.token_id} for {token.name}, roles {', '.join(sorted(token.roles))}"
        + (f", expires {token.expires_at:%Y-%m-%d %H:%M %Z}" if token.expires_at else "")
        + ": copy it now, it is not kept and cannot be shown again",
        markup=False,
    )


def _token_json(token: StaffToken) -> dict[str, object]:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "roles": sorted(token.roles),
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
        "state": token.state,
    }


@tokens_app.command("list")
def tokens_list(as_json: JsonOption = False) -> None:
    """Every token, live, expired or revoked (never the secret: it is not kept)."""
    from rich.table import Table  # noqa: PLC0415

    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from ledger.entrypoints.staff import tokens  # noqa: PLC0415

    with bootstrap.connect(services(settings())) as conn:
        found = tokens.listed(conn)
    if as_json:
        print_lines(_token_json(t) for t in found)
        return
    table = Table(show_header=True)
    for column in ("id", "name", "roles", "created", "expires", "state"):
        table.add_column(column)
    for t in found:
        table.add_row(
            t.token_id,
            t.name,
            ", ".join(sorted(t.roles)),
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never",
            t.state,
        )
    out().print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    which: Annotated[
        str, typer.Argument(help="A token's id (tok_...), or a name: all its live tokens.")
    ],
) -> None:
    """Revoke a token at once: its console sessions end too. It stays listed, as history."""
    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from ledger.entrypoints.cli.console import not_found  # noqa: PLC0415
    from ledger.entrypoints.staff import tokens  # noqa: PLC0415

    with bootstrap.connect(services(settings())) as conn:
        revoked = tokens.revoke(conn, which)
    if not revoked:
        raise not_found(f"no live token has the id or name {which!r}: see `ledger tokens list`")
    for t in revoked:
        out().print(f"revoked {t.token_id} ({t.name})", markup=False)
