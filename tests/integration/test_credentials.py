"""Certificates as credentials anyone can check, end to end on the real pipeline: the acceptance
learner's 9-course specialization credential verified by an independent JOSE implementation
(jwcrypto) with the key from the published JWKS and from the did:web document; a chargeback
flipping the revocation bits of the course and specialization certificates it undid, and only
those (K5: no blind cascade); tampering; a key rotation; `ledger certificate check` on files.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jwcrypto import jwk, jws

from ledger.broker import OutRecord
from ledger.credentials.documents import bit, decode_list
from ledger.entrypoints import bootstrap
from ledger.settings import Settings
from projections.read_models.certificates import certificates_of

from .helpers import (
    Publisher,
    caught_up,
    cli_env,
    ledger_cli,
    running_api,
    running_pipeline,
    services_of,
    specialization_stored,
    wait_for,
)
from .scenario import DS, DS_COURSES, PUBLISHED, at, graded

pytestmark = pytest.mark.integration

CAPSTONE = PUBLISHED["capstone_course_id"]


@dataclass(frozen=True)
class Stack:
    base: str
    settings: Settings
    env: dict[str, str]
    logs: Path


def independently_verified(token: str, key: dict[str, Any]) -> dict[str, Any]:
    """The credential's content, once jwcrypto (not the PyJWT that signed) checked it."""
    verifier = jws.JWS()
    verifier.deserialize(token)
    verifier.verify(jwk.JWK(**key))
    assert verifier.jose_header["alg"] == "EdDSA" and verifier.jose_header["typ"] == "vc+jwt"
    document: dict[str, Any] = json.loads(verifier.payload)
    return document


def completes(p: Publisher, learner: str, start: float = 1) -> list[OutRecord]:
    """Enrolled, verified, every course and the capstone passed and paid."""
    records = [
        p.record(
            "ledger.learner.enrolled.v1",
            learner,
            {"learner_id": learner, "specialization_id": DS, "intent": "certificate"},
            at(start),
        ),
        p.record(
            "ledger.identity.verified.v1",
            learner,
            {"learner_id": learner, "method": "government_id"},
            at(start + 0.5),
        ),
    ]
    for n, course in enumerate([*DS_COURSES, CAPSTONE]):
        when = at(start + 1 + n / 10)
        records += [
            p.record("ledger.course.graded.v1", learner, graded(learner, course), when),
            p.record(
                "ledger.payment.captured.v1",
                learner,
                {
                    "learner_id": learner,
                    "payment_id": f"{learner}-{course}",
                    "course_id": course,
                    "amount": "49.00",
                    "currency": "USD",
                },
                when,
            ),
        ]
    return records


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The pipeline and the API with an issuer key of their own; olga and pia complete Data
    Science, pia also got financial aid for ds-2."""
    logs = tmp_path_factory.mktemp("credentials")
    # A verifier asks for many credentials and lists here; the public rate limit is tested
    # elsewhere (test_staff_access).
    env = {
        "LEDGER_ISSUER_KEY_DIR": str(logs / "issuer"),
        "LEDGER_PUBLIC_RATE_LIMIT": "100000/minute",
    }
    ledger_cli(settings, "issuer", "init", env={**cli_env(settings), **env})
    with (
        running_pipeline(settings, logs / "run.log") as pipeline,
        running_api(settings, logs / "api.log", **env) as base,
    ):
        p = Publisher(settings)
        try:
            p.send(p.record("ledger.specialization.published.v1", DS, PUBLISHED, at(0)))
            wait_for(lambda: specialization_stored(settings, DS), 60, f"the catalog ({pipeline})")
            aid = p.record(
                "ledger.aid.granted.v1", "pia", {"learner_id": "pia", "course_id": "ds-2"}, at(4)
            )
            p.send(*completes(p, "olga"), *completes(p, "pia"), aid)
        finally:
            p.close()
        wait_for(lambda: caught_up(settings), 120, f"the pipeline to catch up ({pipeline})")
        yield Stack(base, settings, {**cli_env(settings), **env, "LEDGER_ISSUER_URL": base}, logs)


def certificate_codes(stack: Stack, learner: str) -> dict[str, str]:
    """Every certificate of the learner's, by what it certifies: its verification code."""
    with bootstrap.connect(services_of(stack.settings)) as conn:
        return {c.subject: c.verification_code for c in certificates_of(conn, learner)}


def fetch(base: str, path: str) -> httpx.Response:
    answer = httpx.get(base + path, timeout=30)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return answer


def test_the_acceptance_learners_credential_verifies_with_the_published_keys(
    stack: Stack,
) -> None:
    code = certificate_codes(stack, "olga")[DS]
    token = fetch(stack.base, f"/v1/certificates/{code}/credential")
    assert token.headers["content-type"].startswith("application/vc+jwt")
    jwks = fetch(stack.base, "/.well-known/jwks.json").json()
    did = fetch(stack.base, "/.well-known/did.json").json()
    [key] = jwks["keys"]
    [method] = did["verificationMethod"]
    assert method["id"] == key["kid"] and did["assertionMethod"] == [key["kid"]]
    for public in (key, method["publicKeyJwk"]):
        credential = independently_verified(token.text, public)
    assert credential["issuer"]["id"] == did["id"] and key["kid"].startswith(did["id"] + "#")
    achievement = credential["credentialSubject"]["achievement"]
    assert (achievement["name"], achievement["version"]) == ("Data Science", "1")
    narrative = achievement["criteria"]["narrative"]
    # The pinned courses in their order, then the capstone (read from the course certificates
    # the specialization certificate rests on: `projections.read_models.credentials`).
    assert f"({', '.join(DS_COURSES)}) and the capstone {CAPSTONE} passed" in narrative
    assert achievement["creator"]["name"] == "Johns Hopkins University"
    assert credential["credentialSubject"]["identifier"][0]["identityHash"] == "olga"
    assert len(credential["evidence"]) == 11  # ten course certificates and the verification
    assert credential["validFrom"].startswith(at(1).date().isoformat()[:7])
    status = credential["credentialStatus"]
    assert status["statusListCredential"] == f"{stack.base}/v1/status-lists/0"
    # The same certificate, the same credential (signatures of Ed25519 are deterministic).
    assert fetch(stack.base, f"/v1/certificates/{code}/credential").text == token.text


def status_bits(stack: Stack, credential: dict[str, Any], key: dict[str, Any]) -> bool:
    """The credential's bit in its status list as published now, read independently."""
    url = credential["credentialStatus"]["statusListCredential"]
    assert url.startswith(stack.base)
    published = independently_verified(fetch(stack.base, url[len(stack.base) :]).text, key)
    until = datetime.fromisoformat(published["validUntil"].replace("Z", "+00:00"))
    since = datetime.fromisoformat(published["validFrom"].replace("Z", "+00:00"))
    assert until - since == timedelta(seconds=stack.settings.status_list_valid_s)
    bits = decode_list(published["credentialSubject"]["encodedList"])
    assert len(bits) * 8 >= 131_072
    return bit(bits, int(credential["credentialStatus"]["statusListIndex"]))


def test_a_chargeback_flips_the_bits_of_what_it_undid_and_only_those(stack: Stack) -> None:
    key = fetch(stack.base, "/.well-known/jwks.json").json()["keys"][0]
    credentials = {}
    codes = {}
    for learner in ("olga", "pia"):
        for subject, code in certificate_codes(stack, learner).items():
            token = fetch(stack.base, f"/v1/certificates/{code}/credential").text
            credentials[(learner, subject)] = (token, independently_verified(token, key))
            codes[(learner, subject)] = code
    assert not any(status_bits(stack, c, key) for _, c in credentials.values())
    saved = stack.logs / "olga-ds.jwt"
    saved.write_text(credentials[("olga", DS)][0])
    old_list = stack.logs / "old-list.jwt"
    old_list.write_text(fetch(stack.base, "/v1/status-lists/0").text)

    p = Publisher(stack.settings)
    try:
        p.send(
            *(
                p.record(
                    "ledger.payment.charged_back.v1",
                    learner,
                    {"learner_id": learner, "payment_id": f"{learner}-ds-2"},
                    at(40),
                )
                for learner in ("olga", "pia")
            )
        )
    finally:
        p.close()
    wait_for(lambda: caught_up(stack.settings), 120, "the chargebacks")

    flipped = {k for k, (_, c) in credentials.items() if status_bits(stack, c, key)}
    # olga's ds-2 certificate rested on the charged-back payment, and her specialization
    # certificate on it: both revoked. pia's ds-2 certificate rested on her charged-back
    # payment too, but financial aid still pays the course: that certificate is revoked and a
    # new one issued at once, so her specialization certificate is still satisfied and is
    # not revoked (K5 re-evaluates; no blind cascade).
    assert flipped == {("olga", "ds-2"), ("olga", DS), ("pia", "ds-2")}
    reissued = certificate_codes(stack, "pia")["ds-2"]
    assert reissued != codes[("pia", "ds-2")]
    fresh = independently_verified(
        fetch(stack.base, f"/v1/certificates/{reissued}/credential").text, key
    )
    assert not status_bits(stack, fresh, key)

    checked = ledger_cli(
        stack.settings, "certificate", "check", str(saved), "--fetch", check=False, env=stack.env
    )
    assert checked.returncode == 1 and checked.stdout.startswith("REVOKED"), checked.stdout
    # The list published before the chargeback still says "not revoked", and is signed:
    # within its validity it is taken at its word, which is why that validity is short.
    earlier = ledger_cli(
        stack.settings,
        "certificate",
        "check",
        str(saved),
        "--status-list",
        str(old_list),
        check=False,
        env=stack.env,
    )
    assert earlier.returncode == 0, earlier.stdout


def tampered(token: str) -> str:
    head, body, signature = token.split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    changed = payload.replace(b'"identityHash":"pia"', b'"identityHash":"pib"')
    assert changed != payload
    return ".".join([head, base64.urlsafe_b64encode(changed).rstrip(b"=").decode(), signature])


def test_tampering_and_rotation_as_a_holder_meets_them(stack: Stack) -> None:
    code = certificate_codes(stack, "pia")[DS]
    token = fetch(stack.base, f"/v1/certificates/{code}/credential").text
    forged = stack.logs / "forged.jwt"
    forged.write_text(tampered(token))
    refused = ledger_cli(
        stack.settings, "certificate", "check", str(forged), "--fetch", check=False, env=stack.env
    )
    assert refused.returncode == 3 and "altered" in refused.stdout, refused.stdout
    before = stack.logs / "before-rotation.jwt"
    before.write_text(token)
    old_kid = fetch(stack.base, "/.well-known/jwks.json").json()["keys"][0]["kid"]
    ledger_cli(stack.settings, "issuer", "rotate", env=stack.env)

    def rotated() -> dict[str, Any] | None:
        published = fetch(stack.base, "/.well-known/jwks.json").json()
        return published if len(published["keys"]) == 2 else None

    published = wait_for(rotated, 30, "the API to publish the new key")
    assert published["keys"][1]["kid"] == old_kid  # kept, so what it signed still verifies
    keys_file = stack.logs / "jwks.json"
    keys_file.write_text(json.dumps(published))
    still = ledger_cli(
        stack.settings,
        "certificate",
        "check",
        str(before),
        "--keys",
        str(keys_file),
        "--fetch",
        check=False,
        env=stack.env,
    )
    assert still.returncode == 0 and still.stdout.startswith("VALID"), still.stdout
    independently_verified(token, published["keys"][1])
    resigned = fetch(stack.base, f"/v1/certificates/{code}/credential").text
    new_head = json.loads(base64.urlsafe_b64decode(resigned.split(".")[0] + "=="))
    assert new_head["kid"] == published["keys"][0]["kid"] != old_kid


def test_the_public_certificate_page_offers_the_credential(stack: Stack) -> None:
    code = certificate_codes(stack, "olga")[DS]
    page = fetch(stack.base, f"/certificates/{code}").text
    assert f'href="/v1/certificates/{code}/credential"' in page
    assert 'href="/.well-known/did.json"' in page
