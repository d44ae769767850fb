"""Checking a credential with nothing but files (and, if allowed, the status list's address):
what `ledger certificate check` runs, and what a third party's verifier does.

1. The signature, against the issuer's public keys (a JWKS or a `did:web` document).
2. The structure: an `OpenBadgeCredential` of the VC data model 2.0, issued by the key's DID,
   valid from a time already past, with a revocation entry in a Bitstring Status List.
3. The revocation: the status list (given, or fetched from its address), itself signed by the
   issuer, of the same list, still within its `validUntil` (an older copy is refused: it could
   hide a revocation made since), and the credential's bit in it.

Each outcome is one verdict in plain words with an exit status: 0 valid, 1 revoked, 3 not to be
trusted (altered, not the issuer's, malformed, or a status list past its time), 4 the signature
holds but revocation could not be checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.credentials import jose
from ledger.credentials.documents import OB_CONTEXT, VC_CONTEXT, bit, decode_list
from ledger.credentials.jose import CredentialError

VALID, REVOKED, INVALID, UNCHECKED = 0, 1, 3, 4

Fetch = Callable[[str], str]


@dataclass
class Verdict:
    """What a check found: the exit status, and each finding in words."""

    status: int = VALID
    findings: list[str] = field(default_factory=list)
    credential: dict[str, Any] | None = None

    @property
    def word(self) -> str:
        return {VALID: "VALID", REVOKED: "REVOKED", INVALID: "NOT VALID", UNCHECKED: "UNCHECKED"}[
            self.status
        ]

    def refuse(self, finding: str) -> Verdict:
        self.status = INVALID
        self.findings.append(finding)
        return self


def keys_of(document: dict[str, Any]) -> dict[str, Any]:
    """A JWKS from a JWKS or a DID document (its verification methods' JWKs)."""
    if "keys" in document:
        return document
    methods = document.get("verificationMethod", [])
    return {
        "keys": [
            {**m["publicKeyJwk"], "kid": m["id"]}
            for m in methods
            if isinstance(m, dict) and "publicKeyJwk" in m and "id" in m
        ]
    }


def _parse(moment: object) -> datetime | None:
    if not isinstance(moment, str):
        return None
    try:
        return datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None


def _structure(credential: dict[str, Any], kid: str, now: datetime) -> list[str]:
    problems = []
    context = credential.get("@context") or []
    if not (isinstance(context, list) and context[:1] == [VC_CONTEXT] and OB_CONTEXT in context):
        problems.append("its @context is not the VC 2.0 and Open Badges 3.0 contexts")
    types = credential.get("type") or []
    if not {"VerifiableCredential", "OpenBadgeCredential"} <= set(types):
        problems.append("it is not an OpenBadgeCredential")
    issuer = credential.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if not isinstance(issuer_id, str) or not kid.startswith(issuer_id + "#"):
        problems.append(f"its issuer {issuer_id!r} is not the owner of the key that signed it")
    valid_from = _parse(credential.get("validFrom"))
    if valid_from is None:
        problems.append("it has no readable validFrom")
    elif valid_from > now:
        problems.append(f"it is valid only from {credential['validFrom']}")
    subject = credential.get("credentialSubject")
    if not (
        isinstance(subject, dict)
        and "AchievementSubject" in (subject.get("type") or [])
        and isinstance(subject.get("achievement"), dict)
    ):
        problems.append("its credentialSubject is not an AchievementSubject with an achievement")
    return problems


def _entry(credential: dict[str, Any]) -> tuple[str, int] | None:
    status = credential.get("credentialStatus")
    if not isinstance(status, dict) or status.get("type") != "BitstringStatusListEntry":
        return None
    if status.get("statusPurpose") != "revocation":
        return None
    try:
        return str(status["statusListCredential"]), int(status["statusListIndex"])
    except (KeyError, ValueError, TypeError):
        return None


def _usable(
    status_list: str, jwks: dict[str, Any], url: str, now: datetime
) -> dict[str, Any] | str:
    """The status list's subject, or why the list cannot be used."""
    try:
        _, document = jose.read(status_list, jwks)
    except CredentialError as error:
        return f"the status list cannot be trusted: {error}"
    problem = None
    until = _parse(document.get("validUntil"))
    subject = document.get("credentialSubject")
    if "BitstringStatusListCredential" not in (document.get("type") or []):
        problem = "the status list is not a BitstringStatusListCredential"
    elif document.get("id") != url:
        problem = f"the status list is {document.get('id')!r}, not the credential's {url!r}"
    elif until is None or until <= now:
        problem = (
            f"the status list was valid until {document.get('validUntil')}: an old copy could "
            "hide a revocation made since, so it is refused; fetch a fresh one"
        )
    elif not isinstance(subject, dict) or subject.get("statusPurpose") != "revocation":
        problem = "the status list is not a revocation list"
    if problem is not None or not isinstance(subject, dict):
        return problem or "the status list has no subject"
    return subject


def _revoked(
    status_list: str, jwks: dict[str, Any], url: str, index: int, now: datetime
) -> bool | str:
    """True/False for the bit, or why the list cannot be used."""
    subject = _usable(status_list, jwks, url, now)
    if isinstance(subject, str):
        return subject
    try:
        return bit(decode_list(str(subject.get("encodedList", ""))), index)
    except ValueError as error:
        return f"the status list cannot be read: {error}"


def check(
    token: str,
    jwks: dict[str, Any],
    now: datetime,
    status_list: str | None = None,
    fetch: Fetch | None = None,
) -> Verdict:
    """Check a credential (a compact JWS) against the issuer's keys; its revocation against
    `status_list`, or the list `fetch` gets from the credential's address."""
    verdict = Verdict()
    try:
        head, credential = jose.read(token, jwks)
    except CredentialError as error:
        return verdict.refuse(str(error))
    verdict.credential = credential
    verdict.findings.append(f"signed by {head['kid']}")
    problems = _structure(credential, str(head["kid"]), now)
    if problems:
        return verdict.refuse("; ".join(problems))
    entry = _entry(credential)
    if entry is None:
        return verdict.refuse("it has no revocation entry in a Bitstring Status List")
    url, index = entry
    if status_list is None and fetch is not None:
        try:
            status_list = fetch(url)
        except Exception as error:  # noqa: BLE001 - any failure to fetch: said, not raised
            verdict.findings.append(f"the status list at {url} could not be fetched: {error}")
    if status_list is None:
        verdict.status = UNCHECKED
        verdict.findings.append("revocation not checked: give the status list (--status-list)")
        return verdict
    revoked = _revoked(status_list, jwks, url, index, now)
    if isinstance(revoked, str):
        return verdict.refuse(revoked)
    if revoked:
        verdict.status = REVOKED
        verdict.findings.append(f"revoked: entry {index} of {url} is set")
    else:
        verdict.findings.append(f"not revoked: entry {index} of {url} is clear")
    return verdict
