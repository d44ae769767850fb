"""The issuer: its Ed25519 signing keys, and the profile every credential names.

Keys live in `LEDGER_ISSUER_KEY_DIR` (default `$LEDGER_STATE_DIR/issuer`), one PEM file each,
readable by their owner alone (0600, in a 0700 directory); they never enter the event store, a
log or the database. The newest signs; `rotate` adds a newer one and keeps the older, whose
public halves stay published, so what they signed still verifies. Each key is named by its
RFC 7638 thumbprint, and every signature says which key made it (`kid`:
`did:web:...#<thumbprint>`).

The issuer's identifier is a `did:web` made from `LEDGER_ISSUER_URL`: a verifier resolves it to
`<url>/.well-known/did.json` (the API serves it), or takes the JWKS at
`<url>/.well-known/jwks.json`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import LedgerError


class IssuerKeyError(LedgerError):
    """Raised when the issuer has no usable signing key (none made yet, or one unreadable)."""

    code = "issuer_key"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The key as a JWK (RFC 8037), without a `kid`."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members in lexical order, no whitespace."""
    members = {k: jwk[k] for k in ("crv", "kty", "x")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def did_web(url: str) -> str:
    """`did:web` for the API at `url` (W3C did:web: the port's colon percent-encoded, the path's
    slashes as colons)."""
    parts = urlsplit(url)
    host = quote(parts.netloc, safe="")
    path = ":".join(quote(p, safe="") for p in parts.path.strip("/").split("/") if p)
    return f"did:web:{host}" + (f":{path}" if path else "")


@dataclass(frozen=True)
class Profile:
    """Who issues: a name, a web address, and the `did:web` made from it."""

    name: str
    url: str

    @property
    def did(self) -> str:
        return did_web(self.url)

    @property
    def base(self) -> str:
        return self.url.rstrip("/")

    def as_json(self) -> dict[str, Any]:
        return {"id": self.did, "type": ["Profile"], "name": self.name, "url": self.url}


@dataclass(frozen=True)
class SigningKey:
    """One of the issuer's keys: its private half (only where it may sign) and its id."""

    private: Ed25519PrivateKey
    created_at: datetime
    path: Path

    @property
    def jwk(self) -> dict[str, str]:
        return public_jwk(self.private.public_key())

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.jwk)

    def kid(self, profile: Profile) -> str:
        return f"{profile.did}#{self.thumbprint}"


class Keys:
    """The issuer's keys in a directory: made, rotated, read."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def all(self) -> list[SigningKey]:
        """Every key, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.pem")):
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (OSError, ValueError) as error:
                raise IssuerKeyError(f"the issuer key {path} cannot be read: {error}") from None
            if not isinstance(key, Ed25519PrivateKey):
                raise IssuerKeyError(f"the issuer key {path} is not an Ed25519 key")
            stamp = path.name.split("-", 1)[0]
            created = datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
            found.append(SigningKey(key, created, path))
        return found

    def active(self) -> SigningKey:
        """The key that signs now: the newest."""
        keys = self.all()
        if not keys:
            raise IssuerKeyError(
                f"the issuer has no signing key in {self.directory}: run `ledger issuer init` "
                "(or set LEDGER_ISSUER_KEY_DIR to where the keys are)"
            )
        return keys[-1]

    def add(self, key: Ed25519PrivateKey | None = None) -> SigningKey:
        """Store a new key (a fresh one unless given) as the newest; it signs from now on."""
        key = key or Ed25519PrivateKey.generate()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        created = datetime.now(UTC)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        name = f"{created:%Y%m%dT%H%M%S%f}-{thumbprint(public_jwk(key.public_key()))}.pem"
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        return SigningKey(key, created, path)

    def jwks(self, profile: Profile) -> dict[str, Any]:
        """Every key's public half, newest first, each with its `kid`."""
        return {
            "keys": [
                {**k.jwk, "kid": k.kid(profile), "use": "sig", "alg": "EdDSA"}
                for k in reversed(self.all())
            ]
        }


def did_document(profile: Profile, jwks: dict[str, Any]) -> dict[str, Any]:
    """The `did:web` document: every key a verification method the issuer asserts with."""
    methods = [
        {
            "id": key["kid"],
            "type": "JsonWebKey2020",
            "controller": profile.did,
            "publicKeyJwk": {k: key[k] for k in ("kty", "crv", "x")},
        }
        for key in jwks["keys"]
    ]
    return {
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/jws-2020/v1",
        ],
        "id": profile.did,
        "verificationMethod": methods,
        "assertionMethod": [m["id"] for m in methods],
    }
