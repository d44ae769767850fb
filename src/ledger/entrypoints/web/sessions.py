"""Console sessions: a signed cookie naming the token its holder signed in with.

The cookie holds the token's public id, never the token, signed (itsdangerous, HMAC-SHA256)
with the key of `staff.secrets` and stamped with its time: it is `HttpOnly` (no script can read
it), `SameSite=Strict` (no other site's page can make the browser send it, so no other site can
post a form as the signed-in member of staff) and, with `LEDGER_COOKIE_SECURE`, sent only over
HTTPS. It lasts `MAX_AGE_S`; each request still checks that the token is live, so revoking a
token ends its sessions at once. Forms that change something also carry a token derived from
the session (`csrf_token`), checked on submission: a second guard beside `SameSite`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import cached_property

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

COOKIE = "ledger_session"
#: A working day: a session left open on a shared machine ends by itself.
MAX_AGE_S = 8 * 3600


class SessionError(Exception):
    """Raised when a session cookie is missing, forged or too old to honour."""


class Sessions:
    """Makes and reads session cookies with the key `secret` gives (asked for on first use)."""

    def __init__(self, secret: Callable[[], bytes], *, secure: bool) -> None:
        self._secret = secret
        self.secure = secure

    @cached_property
    def _key(self) -> bytes:
        return self._secret()

    @cached_property
    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._key, salt="ledger.console.session")

    def issue(self, token_id: str) -> str:
        """The cookie value for a session signed in with the token `token_id`."""
        value = self._serializer.dumps({"token": token_id})
        return value if isinstance(value, str) else value.decode()

    def token_id(self, cookie: str | None) -> str:
        """The token id a session cookie names; `SessionError` if it names none we made."""
        if not cookie:
            raise SessionError("you are not signed in")
        try:
            payload = self._serializer.loads(cookie, max_age=MAX_AGE_S)
        except SignatureExpired:
            raise SessionError("your session has ended (8 hours): sign in again") from None
        except BadSignature:
            raise SessionError("your session is not valid: sign in again") from None
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str):
            raise SessionError("your session is not valid: sign in again")
        return token

    def csrf_token(self, cookie: str) -> str:
        """The form token of the session this cookie is: unguessable without the key."""
        return hmac.new(self._key, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, cookie: str | None, submitted: str | None) -> bool:
        if not cookie or not submitted:
            return False
        return hmac.compare_digest(self.csrf_token(cookie), submitted)
