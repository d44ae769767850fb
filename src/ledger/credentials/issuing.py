"""Issuing: a certificate's signed credential and a status list's signed credential, from the
read models and the issuer's active key. What the API serves and `ledger certificate
credential` prints."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection

from ledger.credentials import documents, jose
from ledger.credentials.issuer import Keys, Profile, SigningKey, did_document
from ledger.settings import Settings
from projections.read_models.credentials import credential_facts, revoked_indexes

#: How long the keys read from their directory are trusted before it is read again: a key
#: rotated by `ledger issuer rotate` signs everywhere within this.
KEYS_TTL_S = 5.0


class Issuer:
    """The ledger as an issuer of credentials."""

    def __init__(self, settings: Settings) -> None:
        self.profile = Profile(settings.issuer_name, settings.issuer_url)
        self.keys = Keys(settings.issuer_keys)
        self.list_valid = timedelta(seconds=settings.status_list_valid_s)
        self._read: tuple[float, list[SigningKey]] | None = None

    def _all(self) -> list[SigningKey]:
        now = time.monotonic()
        if self._read is None or now - self._read[0] > KEYS_TTL_S:
            self._read = (now, self.keys.all())
        return self._read[1]

    def active(self) -> SigningKey:
        keys = self._all()
        return keys[-1] if keys else self.keys.active()  # the latter says what to do

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**k.jwk, "kid": k.kid(self.profile), "use": "sig", "alg": jose.ALGORITHM}
                for k in reversed(self._all())
            ]
        }

    def did_document(self) -> dict[str, Any]:
        return did_document(self.profile, self.jwks())

    def credential(self, conn: Connection[Any], code: str) -> str | None:
        """The signed credential of the certificate with this code; None if there is none."""
        facts = credential_facts(conn, code)
        if facts is None:
            return None
        return jose.sign(documents.open_badge(facts, self.profile), self.active(), self.profile)

    def revoked(self, conn: Connection[Any], status_list: int) -> list[int] | None:
        """The revoked entries of a list; None if no certificate is in it."""
        revoked, exists = revoked_indexes(conn, status_list)
        return revoked if exists else None

    def status_list(self, status_list: int, revoked: list[int], now: datetime) -> str:
        """The list signed now, valid for `LEDGER_STATUS_LIST_VALID_S`."""
        document = documents.status_list(
            self.profile, status_list, revoked, now, now + self.list_valid
        )
        return jose.sign(document, self.active(), self.profile)
