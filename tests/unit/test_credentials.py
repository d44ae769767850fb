"""The credentials without services: documents from facts, the bitstring as the W3C
specification encodes it, signatures checked by an independent JOSE implementation (jwcrypto,
not the PyJWT that signs), tampering, rotation, and every verdict of `ledger certificate
check`."""

from __future__ import annotations

import base64
import json
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from jwcrypto import jwk, jws

from ledger.credentials import documents, jose
from ledger.credentials.check import INVALID, REVOKED, UNCHECKED, VALID, check, keys_of
from ledger.credentials.issuer import Keys, Profile, did_document, did_web, thumbprint
from ledger.credentials.jose import CredentialError
from projections.read_models.credentials import LIST_SIZE, CredentialFacts, Programme

from .helpers import T0

PROFILE = Profile("Enrollment ledger", "https://ledger.example.org")
NOW = T0 + timedelta(days=30)
COURSES = [f"ds-{n}" for n in range(1, 10)]


def facts(status_index: int = 7, kind: str = "specialization") -> CredentialFacts:
    return CredentialFacts(
        certificate_id="5d1f0f9e-8a8e-4a53-9a54-1f2a9d0c6b11",
        learner_id="ada",
        verification_code="q3ZkPp9xT2mH0sVbLr4w",
        kind=kind,
        subject="jhu-data-science" if kind == "specialization" else "ds-3",
        earned_at=T0 + timedelta(days=3),
        evidence=[f"3f0c2b8e-2c1d-5e8a-9d3f-6a1b0c9e8f7d:{n}" for n in (3, 12, 14)],
        curriculum_version=1 if kind == "specialization" else None,
        courses=COURSES if kind == "specialization" else [],
        capstone_course_id="ds-capstone" if kind == "specialization" else None,
        programmes=[
            Programme(
                specialization_id="jhu-data-science",
                title="Data Science",
                partners=["Johns Hopkins University"],
                language="en",
            )
        ],
        status_list=0,
        status_index=status_index,
        revoked_at=None,
        revoked_reason=None,
    )


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    found = Keys(tmp_path / "issuer")
    found.add()
    return found


def jwks(keys: Keys) -> dict[str, object]:
    return keys.jwks(PROFILE)


def status_list(keys: Keys, revoked: list[int], at: datetime = NOW) -> str:
    document = documents.status_list(PROFILE, 0, revoked, at, at + timedelta(hours=1))
    return jose.sign(document, keys.active(), PROFILE)


def test_a_credential_is_an_open_badge_naming_the_learner_by_id_alone() -> None:
    credential = documents.open_badge(facts(), PROFILE)
    assert credential["@context"] == [documents.VC_CONTEXT, documents.OB_CONTEXT]
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["issuer"]["id"] == "did:web:ledger.example.org"
    assert credential["validFrom"] == "2026-01-08T09:00:00Z"
    subject = credential["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"]
    assert subject["identifier"][0]["identityHash"] == "ada"
    assert "ada" not in json.dumps(subject["achievement"])
    achievement = subject["achievement"]
    assert (achievement["name"], achievement["version"]) == ("Data Science", "1")
    assert "ds-1, ds-2" in achievement["criteria"]["narrative"]
    assert achievement["creator"]["name"] == "Johns Hopkins University"
    assert [e["id"] for e in credential["evidence"]] == [
        f"urn:ledger:event:3f0c2b8e-2c1d-5e8a-9d3f-6a1b0c9e8f7d:{n}" for n in (3, 12, 14)
    ]
    assert credential["credentialStatus"] == {
        "id": "https://ledger.example.org/v1/status-lists/0#7",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "7",
        "statusListCredential": "https://ledger.example.org/v1/status-lists/0",
    }
    assert documents.canonical(credential) == documents.canonical(
        documents.open_badge(facts(), PROFILE)
    )  # the same facts, the same bytes


def test_the_bitstring_is_the_specifications_and_reads_its_example() -> None:
    # The W3C Bitstring Status List's own example of an empty list of 131,072 entries.
    example = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"
    assert documents.decode_list(example) == bytes(LIST_SIZE // 8)
    encoded = documents.encode_list([0, 7, 8, LIST_SIZE - 1])
    bits = documents.decode_list(encoded)
    assert len(bits) == 16_384 and bits[0] == 0b1000_0001 and bits[1] == 0b1000_0000
    assert [documents.bit(bits, i) for i in (0, 1, 7, 8, 9, LIST_SIZE - 1)] == [
        True,
        False,
        True,
        True,
        False,
        True,
    ]
    assert encoded == documents.encode_list([0, 7, 8, LIST_SIZE - 1])  # no timestamp inside
    with pytest.raises(ValueError, match="multibase"):
        documents.decode_list("z" + encoded[1:])


def test_keys_are_private_to_their_owner_and_named_by_their_rfc7638_thumbprint(
    keys: Keys,
) -> None:
    path = keys.active().path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # RFC 8037, appendix A.3: the thumbprint of its example Ed25519 key.
    example = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert thumbprint(example) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert did_web("https://ledger.example.org:8443/mooc/") == (
        "did:web:ledger.example.org%3A8443:mooc"
    )


def test_an_independent_implementation_verifies_the_signature_with_the_published_keys(
    keys: Keys,
) -> None:
    token = jose.sign(documents.open_badge(facts(), PROFILE), keys.active(), PROFILE)
    published = jwks(keys)
    did = did_document(PROFILE, published)
    for source in (published["keys"][0], did["verificationMethod"][0]["publicKeyJwk"]):
        verifier = jws.JWS()
        verifier.deserialize(token)
        verifier.verify(jwk.JWK(**source))
        assert verifier.jose_header["alg"] == "EdDSA"
        assert verifier.jose_header["typ"] == "vc+jwt"
        assert json.loads(verifier.payload) == documents.open_badge(facts(), PROFILE)
    assert token == jose.sign(documents.open_badge(facts(), PROFILE), keys.active(), PROFILE)


def tampered(token: str) -> str:
    """One character of the subject changed, the signature kept."""
    head, body, signature = token.split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    changed = payload.replace(b'"identityHash":"ada"', b'"identityHash":"adb"')
    assert changed != payload
    return ".".join([head, base64.urlsafe_b64encode(changed).rstrip(b"=").decode(), signature])


def test_one_changed_character_fails_verification_with_a_clear_reason(keys: Keys) -> None:
    token = jose.sign(documents.open_badge(facts(), PROFILE), keys.active(), PROFILE)
    forged = tampered(token)
    with pytest.raises(CredentialError, match="altered after it was signed"):
        jose.read(forged, jwks(keys))
    verifier = jws.JWS()
    verifier.deserialize(forged)
    with pytest.raises(jws.InvalidJWSSignature):
        verifier.verify(jwk.JWK(**jwks(keys)["keys"][0]))
    verdict = check(forged, jwks(keys), NOW, status_list(keys, []))
    assert verdict.status == INVALID and "altered" in verdict.findings[0]


def test_a_credential_signed_before_a_rotation_still_verifies_after(keys: Keys) -> None:
    before = jose.sign(documents.open_badge(facts(), PROFILE), keys.active(), PROFILE)
    old_kid = keys.active().kid(PROFILE)
    keys.add()
    after = jose.sign(documents.open_badge(facts(), PROFILE), keys.active(), PROFILE)
    assert jose.header(after)["kid"] != old_kid == jose.header(before)["kid"]
    published = jwks(keys)
    assert [k["kid"] for k in published["keys"]][1] == old_kid
    for token in (before, after):
        assert check(token, published, NOW, status_list(keys, [])).status == VALID


def test_every_verdict_of_the_check(keys: Keys, tmp_path: Path) -> None:
    token = jose.sign(documents.open_badge(facts(status_index=7), PROFILE), keys.active(), PROFILE)
    published = jwks(keys)
    assert check(token, published, NOW, status_list(keys, [3])).status == VALID
    revoked = check(token, published, NOW, status_list(keys, [3, 7]))
    assert revoked.status == REVOKED and "entry 7" in revoked.findings[-1]
    stale = check(token, published, NOW + timedelta(hours=2), status_list(keys, []))
    assert stale.status == INVALID and "refused" in stale.findings[-1]
    unchecked = check(token, published, NOW)
    assert unchecked.status == UNCHECKED and "--status-list" in unchecked.findings[-1]
    other = Keys(tmp_path / "someone-else")
    other.add()
    foreign = check(token, jwks(other), NOW, status_list(keys, []))
    assert foreign.status == INVALID and "not among the issuer's keys" in foreign.findings[0]
    forged_list = jose.sign(
        documents.status_list(PROFILE, 0, [], NOW, NOW + timedelta(hours=1)),
        other.active(),
        PROFILE,
    )
    assert check(token, published, NOW, forged_list).status == INVALID
    early = check(token, published, T0, status_list(keys, [], T0))
    assert early.status == INVALID and "valid only from" in early.findings[-1]
    assert check("not a credential", published, NOW).status == INVALID
    assert keys_of(did_document(PROFILE, published)) == {
        "keys": [
            {k: v for k, v in key.items() if k in ("kty", "crv", "x", "kid")}
            for key in published["keys"]
        ]
    }
