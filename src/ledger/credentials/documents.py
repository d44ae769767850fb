"""The credentials themselves: an Open Badges 3.0 `OpenBadgeCredential` per certificate, and a
W3C `BitstringStatusListCredential` per status list. Pure functions of their facts: the same
facts give the same document, byte for byte once serialized (`canonical`), so a rebuild of the
read models gives the same credential.

The learner is named by their id alone (an `IdentityObject` of type `systemId`, not hashed: the
id is what support staff and the verification page already show); no name, no e-mail.
"""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from typing import Any

from ledger.credentials.issuer import Profile
from projections.read_models.credentials import LIST_SIZE, CredentialFacts

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
#: The multibase prefix of base64url without padding, as the Bitstring Status List requires.
MULTIBASE_BASE64URL = "u"


def instant(moment: datetime) -> str:
    """A time as the VC data model writes it: UTC, to the second, with `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical(document: dict[str, Any]) -> bytes:
    """The document's bytes as signed: keys sorted, no whitespace, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def status_list_url(profile: Profile, status_list: int) -> str:
    return f"{profile.base}/v1/status-lists/{status_list}"


def _partners(facts: CredentialFacts) -> list[str]:
    return list(dict.fromkeys(p for programme in facts.programmes for p in programme.partners))


def _achievement(facts: CredentialFacts) -> dict[str, Any]:
    partners = _partners(facts)
    offered = f", offered by {' and '.join(partners)}" if partners else ""
    if facts.kind == "specialization":
        title = facts.programmes[0].title if facts.programmes else facts.subject
        language = facts.programmes[0].language if facts.programmes else None
        courses = ", ".join(facts.courses)
        achievement: dict[str, Any] = {
            "id": f"urn:ledger:specialization:{facts.subject}:v{facts.curriculum_version}",
            "achievementType": "Certificate",
            "name": title,
            "description": f"The specialization {title} ({facts.subject}){offered}, "
            f"curriculum version {facts.curriculum_version}.",
            "criteria": {
                "narrative": f"Every course of curriculum version {facts.curriculum_version} "
                f"({courses}) and the capstone {facts.capstone_course_id} passed, paid for "
                "and certified, with the learner's identity verified, while enrolled "
                "(rules K1 to K3)."
            },
            "version": str(facts.curriculum_version),
        }
        if language:
            achievement["inLanguage"] = language
    else:
        titles = " and ".join(p.title for p in facts.programmes)
        part_of = f", part of {titles}" if titles else ""
        achievement = {
            "id": f"urn:ledger:course:{facts.subject}",
            "achievementType": "Course",
            "name": f"Course {facts.subject}",
            "description": f"The course {facts.subject}{part_of}{offered}.",
            "criteria": {
                "narrative": f"Course {facts.subject} passed and paid for, with the "
                "learner's identity verified at that moment (rule K1)."
            },
        }
    if partners:
        achievement["creator"] = {
            "id": f"urn:ledger:partners:{facts.kind}:{facts.subject}",
            "type": ["Profile"],
            "name": " and ".join(partners),
        }
    return {"type": ["Achievement"], **achievement}


def open_badge(facts: CredentialFacts, profile: Profile) -> dict[str, Any]:
    """The `OpenBadgeCredential` of one certificate (unsigned)."""
    achievement = _achievement(facts)
    status_list = status_list_url(profile, facts.status_list)
    return {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": f"urn:uuid:{facts.certificate_id}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": profile.as_json(),
        "validFrom": instant(facts.earned_at),
        "name": f"{achievement['name']} ({facts.kind} certificate)",
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityType": "systemId",
                    "hashed": False,
                    "identityHash": facts.learner_id,
                }
            ],
            "achievement": achievement,
        },
        "evidence": [
            {
                "id": f"urn:ledger:event:{event}",
                "type": ["Evidence"],
                "name": f"ledger event {event}",
                "description": "An event of the learner's history this certificate rests on.",
            }
            for event in facts.evidence
        ],
        "credentialStatus": {
            "id": f"{status_list}#{facts.status_index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(facts.status_index),
            "statusListCredential": status_list,
        },
    }


def encode_list(revoked: list[int], size: int = LIST_SIZE) -> str:
    """The bits as the Bitstring Status List encodes them: index 0 is the most significant bit
    of the first byte; GZIP, then base64url without padding, with the multibase prefix `u`."""
    bits = bytearray(size // 8)
    for index in revoked:
        bits[index // 8] |= 0x80 >> (index % 8)
    compressed = gzip.compress(bytes(bits), mtime=0)  # no timestamp: the same bits, same text
    return MULTIBASE_BASE64URL + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode()


def decode_list(encoded: str) -> bytes:
    """The bits of an `encodedList`; `ValueError` if it is not one."""
    if not encoded.startswith(MULTIBASE_BASE64URL):
        raise ValueError("the list is not multibase base64url (it must start with 'u')")
    body = encoded[1:]
    try:
        return gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"the list is not GZIP'd base64url: {error}") from None


def bit(bits: bytes, index: int) -> bool:
    """Whether entry `index` is set."""
    if not 0 <= index < len(bits) * 8:
        raise ValueError(f"index {index} is outside a list of {len(bits) * 8} entries")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def status_list(
    profile: Profile,
    status_list_id: int,
    revoked: list[int],
    valid_from: datetime,
    valid_until: datetime,
) -> dict[str, Any]:
    """The `BitstringStatusListCredential` of one list (unsigned): valid only until
    `valid_until`, so an old copy cannot be used to pass a revoked certificate off as valid."""
    url = status_list_url(profile, status_list_id)
    return {
        "@context": [VC_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": profile.did,
        "validFrom": instant(valid_from),
        "validUntil": instant(valid_until),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_list(revoked),
        },
    }
