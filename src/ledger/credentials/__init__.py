"""Portable certificates: every certificate as an Open Badges 3.0 `OpenBadgeCredential` (a W3C
Verifiable Credential 2.0) signed with the ledger's Ed25519 issuer key, and revocation published
as signed W3C Bitstring Status Lists, so anyone can check a certificate without asking us.

`issuer` holds the keys and the issuer's `did:web` profile; `documents` builds the credentials
and status lists from the read models' facts (pure: the same facts, the same document);
`jose` signs and reads them as VC-JOSE (`application/vc+jwt`); `check` is the verifier
`ledger certificate check` runs with nothing but files. docs/credentials.md says why VC-JOSE
and shows a whole credential and status list.
"""
