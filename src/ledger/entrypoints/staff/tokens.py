"""Staff tokens: made once, shown once, stored only as a hash.

A token is `ldg_` and 43 characters of base64url: 256 random bits. Only its SHA-256 is kept, so
a copy of the database gives no one a working token. A slow password hash (argon2, bcrypt)
would add nothing: those protect secrets people choose, which can be guessed; a 256-bit random
secret cannot be, and a fast hash keeps each request's check to one indexed lookup. Each token
has a short public id (`tok_...`) to list and revoke it by, a name saying whose it is (the
access log and the record of reads show the name, never the token), roles, and an optional
expiry. A revoked token stays in the table, so the record of reads keeps saying whose it was.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import Connection, errors
from psycopg.sql import SQL

from ledger.entrypoints.staff.roles import Role

PREFIX = "ldg_"

DDL = """
CREATE TABLE IF NOT EXISTS ledger_staff_tokens (
    token_id text PRIMARY KEY,
    name text NOT NULL,
    roles text[] NOT NULL,
    secret_sha256 bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
)
"""

_COLUMNS = SQL("token_id, name, roles, created_at, expires_at, revoked_at, expires_at <= now()")


@dataclass(frozen=True)
class StaffToken:
    """A token as stored: everything but the secret, which is never kept."""

    token_id: str
    name: str
    roles: frozenset[Role]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    expired: bool

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired else "live"


@dataclass(frozen=True)
class IssuedToken:
    """A token just made: the only time its secret exists outside its holder's hands."""

    token: StaffToken
    secret: str


class TokenRefusedError(Exception):
    """Raised when a presented token opens nothing: unknown, revoked or expired (the message
    says which, and what to do)."""


def _utc(moment: datetime | None) -> str:
    return "?" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def digest(secret: str) -> bytes:
    """The stored form of a token: its SHA-256."""
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).digest()


def _token(row: tuple[Any, ...]) -> StaffToken:
    token_id, name, roles, created_at, expires_at, revoked_at, expired = row
    return StaffToken(
        token_id=token_id,
        name=name,
        roles=frozenset(Role(r) for r in roles),
        created_at=created_at,
        expires_at=expires_at,
        revoked_at=revoked_at,
        expired=bool(expired),
    )


def create_table(conn: Connection[Any]) -> None:
    conn.execute(DDL)


def issue(
    conn: Connection[Any], name: str, roles: frozenset[Role], expires_in: timedelta | None
) -> IssuedToken:
    """Make a token for `name` with `roles`; the answer holds the secret, the table its hash."""
    while True:
        secret = PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(5)
        try:
            with conn.transaction():
                row = conn.execute(
                    SQL(
                        "INSERT INTO ledger_staff_tokens "
                        "(token_id, name, roles, secret_sha256, expires_at) "
                        "VALUES (%s, %s, %s, %s, now() + %s) RETURNING {}"
                    ).format(_COLUMNS),
                    (token_id, name, sorted(r.value for r in roles), digest(secret), expires_in),
                ).fetchone()
        except errors.UniqueViolation:
            continue  # an id (one in a trillion) or a secret (never) met twice: draw again
        if row is None:  # pragma: no cover - an INSERT ... RETURNING gives its row
            raise RuntimeError("the token's row was not returned")
        return IssuedToken(_token(row), secret)


def listed(conn: Connection[Any]) -> list[StaffToken]:
    """Every token, live or not, oldest first."""
    rows = conn.execute(
        SQL("SELECT {} FROM ledger_staff_tokens ORDER BY created_at, token_id").format(_COLUMNS)
    ).fetchall()
    return [_token(row) for row in rows]


def revoke(conn: Connection[Any], id_or_name: str) -> list[StaffToken]:
    """Revoke the token with this id, or every live token with this name; the tokens revoked
    (none if nothing live matched)."""
    rows = conn.execute(
        SQL(
            "UPDATE ledger_staff_tokens SET revoked_at = now() "
            "WHERE (token_id = %s OR name = %s) AND revoked_at IS NULL RETURNING {}"
        ).format(_COLUMNS),
        (id_or_name, id_or_name),
    ).fetchall()
    return [_token(row) for row in rows]


def authenticate(conn: Connection[Any], secret: str) -> StaffToken:
    """The live token whose secret this is; `TokenRefusedError` otherwise."""
    row = conn.execute(
        SQL("SELECT {} FROM ledger_staff_tokens WHERE secret_sha256 = %s").format(_COLUMNS),
        (digest(secret),),
    ).fetchone()
    if row is None:
        raise TokenRefusedError("the token is not known: check it, or ask for a new one")
    token = _token(row)
    if token.revoked_at is not None:
        raise TokenRefusedError(
            f"token {token.token_id} ({token.name}) was revoked on "
            f"{_utc(token.revoked_at)}: ask for a new one"
        )
    if token.expired:
        raise TokenRefusedError(
            f"token {token.token_id} ({token.name}) expired on "
            f"{_utc(token.expires_at)}: ask for a new one"
        )
    return token


def by_id(conn: Connection[Any], token_id: str) -> StaffToken:
    """The live token with this id (a console session names its token by id)."""
    row = conn.execute(
        SQL("SELECT {} FROM ledger_staff_tokens WHERE token_id = %s").format(_COLUMNS),
        (token_id,),
    ).fetchone()
    if row is None:
        raise TokenRefusedError("the session's token no longer exists: sign in again")
    token = _token(row)
    if token.state != "live":
        raise TokenRefusedError(
            f"the session's token {token.token_id} is {token.state}: sign in with a live one"
        )
    return token
