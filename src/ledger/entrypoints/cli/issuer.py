"""Operators' commands for the credentials' issuer: make its signing key, show who it is and
what it publishes, rotate the key. The private key stays in `LEDGER_ISSUER_KEY_DIR` (0600) and is
never printed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.entrypoints.cli.console import (
    JsonOption,
    command_group,
    err,
    out,
    print_document,
    settings,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.credentials.issuing import Issuer

issuer_app = command_group("The issuer of the certificates' credentials: its keys and did:web.")


@issuer_app.command("init")
def issuer_init(
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", help="An Ed25519 private key (PEM, unencrypted) to use instead of a new one."
        ),
    ] = None,
) -> None:
    """Make the issuer's signing key, unless it has one (then say so and change nothing)."""
    from ledger.credentials.issuing import Issuer  # noqa: PLC0415

    issuer = Issuer(settings())
    existing = issuer.keys.all()
    if existing:
        err().print(
            f"the issuer already has {len(existing)} key(s) in {issuer.keys.directory}; "
            "`ledger issuer rotate` adds a newer one",
            markup=False,
        )
        _show(issuer)
        return
    made = issuer.keys.add(_imported(key) if key else None)
    err().print(f"made the issuer key {made.path}", markup=False)
    _show(issuer)


@issuer_app.command("rotate")
def issuer_rotate() -> None:
    """Add a new signing key; it signs from now on. The older keys stay published, so what
    they signed still verifies."""
    from ledger.credentials.issuing import Issuer  # noqa: PLC0415

    issuer = Issuer(settings())
    issuer.keys.active()  # says what to do if there is none yet
    made = issuer.keys.add()
    err().print(f"made {made.path}; it signs from now on", markup=False)
    _show(issuer)


@issuer_app.command("show")
def issuer_show(as_json: JsonOption = False) -> None:
    """The issuer: its name, url, did:web, and every key (newest first)."""
    from ledger.credentials.issuing import Issuer  # noqa: PLC0415

    issuer = Issuer(settings())
    if as_json:
        print_document(
            {
                "profile": issuer.profile.as_json(),
                "did_document": issuer.did_document(),
                "jwks": issuer.jwks(),
            }
        )
        return
    _show(issuer)


def _show(issuer: Issuer) -> None:
    profile = issuer.profile
    out().print(f"issuer: {profile.name} <{profile.url}>", markup=False)
    out().print(f"did: {profile.did}", markup=False)
    out().print(f"published at: {profile.base}/.well-known/did.json and /jwks.json", markup=False)
    for n, key in enumerate(reversed(issuer.keys.all())):
        state = "signs now" if n == 0 else "retired (still published)"
        out().print(f"key {key.kid(profile)}: made {key.created_at:%Y-%m-%d %H:%M} UTC, {state}")


def _imported(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise typer.BadParameter(f"cannot read {path} as a PEM private key: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise typer.BadParameter(f"{path} is not an Ed25519 key")
    return key
