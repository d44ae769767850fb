"""VC-JOSE: a credential secured as a compact JWS (`application/vc+jwt`), EdDSA with Ed25519.

The payload is the credential itself (W3C VC-JOSE-COSE for the VC data model 2.0; no `vc`
claim), its bytes `documents.canonical`; the protected header names the algorithm, the
media types (`typ: vc+jwt`, `cty: vc`) and the key (`kid`). Ed25519 signatures are
deterministic, so the same credential signed with the same key is the same text.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
from jwt.exceptions import InvalidTokenError

from ledger.credentials.documents import canonical
from ledger.credentials.issuer import Profile, SigningKey
from ledger.errors import LedgerError

MEDIA_TYPE = "application/vc+jwt"
ALGORITHM = "EdDSA"

_JWS = jwt.api_jws.PyJWS(algorithms=[ALGORITHM])


class CredentialError(LedgerError):
    """Raised when a credential or status list cannot be read or its signature checked; the
    message says what is wrong in words a holder can act on."""

    code = "credential"


def sign(document: dict[str, Any], key: SigningKey, profile: Profile) -> str:
    """The document as a compact JWS signed with `key`."""
    return _JWS.encode(
        canonical(document),
        key.private,
        algorithm=ALGORITHM,
        headers={"kid": key.kid(profile), "typ": "vc+jwt", "cty": "vc"},
    )


def header(token: str) -> dict[str, Any]:
    """The protected header, unverified (to find the key)."""
    try:
        found: dict[str, Any] = _JWS.get_unverified_header(token.strip())
    except InvalidTokenError as error:
        raise CredentialError(f"this is not a signed credential (a compact JWS): {error}") from None
    return found


def read(token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and the document, once the signature is checked against the key the header
    names among `jwks`' keys."""
    found = header(token)
    if found.get("alg") != ALGORITHM:
        raise CredentialError(f"signed with {found.get('alg')!r}; the ledger signs with EdDSA")
    kid = found.get("kid")
    key = next((k for k in jwks.get("keys", []) if k.get("kid") == kid), None)
    if key is None:
        known = ", ".join(str(k.get("kid")) for k in jwks.get("keys", [])) or "none"
        raise CredentialError(
            f"signed with key {kid!r}, which is not among the issuer's keys ({known}): "
            "not issued by this issuer, or its keys are out of date"
        )
    try:
        verified = _JWS.decode_complete(
            token.strip(), key=jwt.PyJWK(key).key, algorithms=[ALGORITHM]
        )
    except InvalidTokenError as error:
        raise CredentialError(
            "the signature does not match the content: the credential was altered after it "
            f"was signed, or signed by another key ({error})"
        ) from None
    try:
        document = json.loads(verified["payload"])
    except ValueError:
        raise CredentialError("the signed content is not JSON") from None
    if not isinstance(document, dict):
        raise CredentialError("the signed content is not a JSON object")
    return found, document
