"""The public face of the credentials: each certificate's signed Open Badges credential, the
revocation status lists, and the issuer's keys (`did:web` document and JWKS), all without a
credential and rate-limited like every public route.

A status list is signed afresh whenever a revocation changed it and at least every minute
otherwise, so its short `validUntil` is always well ahead; between those moments the same
signed copy is served (cheap, and the same bytes to every verifier).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import JSONResponse, Response

from ledger.credentials.issuing import Issuer
from ledger.credentials.jose import MEDIA_TYPE
from ledger.entrypoints.web.clients import Clients
from ledger.entrypoints.web.public import NotFound, VerificationCode
from ledger.entrypoints.web.ratelimit import PublicRateLimit

#: A signed status list is served again for at most this long when nothing changed in it.
RESIGN_S = 60.0

StatusListId = Annotated[int, Path(ge=0, le=2**40, description="The status list's number.")]

_VC_JWT: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {}}, "description": "A compact JWS (VC-JOSE)."}
}


class _SignedLists:
    """Status lists as last signed, by number, with the revoked entries they were signed for."""

    def __init__(self) -> None:
        self._lists: dict[int, tuple[float, tuple[int, ...], str]] = {}
        self._lock = threading.Lock()

    def get(self, issuer: Issuer, number: int, revoked: list[int]) -> str:
        key = tuple(revoked)
        with self._lock:
            found = self._lists.get(number)
            if found is not None and found[1] == key and time.monotonic() - found[0] < RESIGN_S:
                return found[2]
        token = issuer.status_list(number, revoked, datetime.now(UTC))
        with self._lock:
            self._lists[number] = (time.monotonic(), key, token)
        return token


def router(clients: Clients, issuer: Issuer, limit: PublicRateLimit) -> APIRouter:
    """The public credential routes."""
    public = APIRouter(dependencies=[Depends(limit)], tags=["credentials"])
    signed = _SignedLists()

    @public.get(
        "/v1/certificates/{code}/credential",
        response_class=Response,
        responses={**_VC_JWT, 404: {"model": NotFound}},
        summary="The certificate as a signed Open Badges 3.0 credential (public)",
    )
    def get_credential(code: VerificationCode) -> Response:
        with clients.connection() as conn:
            token = issuer.credential(conn, code)
        if token is None:
            raise HTTPException(
                status_code=404,
                detail=f"no certificate has the verification code {code!r} (or not projected yet)",
            )
        return Response(
            token,
            media_type=MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{code}.jwt"'},
        )

    @public.get(
        "/v1/status-lists/{number}",
        response_class=Response,
        responses={**_VC_JWT, 404: {"model": NotFound}},
        summary="A revocation status list, signed, valid for a short while (public)",
    )
    def get_status_list(number: StatusListId) -> Response:
        with clients.connection() as conn:
            revoked = issuer.revoked(conn, number)
        if revoked is None:
            raise HTTPException(
                status_code=404, detail=f"no certificate is in status list {number}"
            )
        return Response(
            signed.get(issuer, number, revoked),
            media_type=MEDIA_TYPE,
            headers={"Cache-Control": "max-age=60"},
        )

    @public.get(
        "/.well-known/did.json",
        summary="The issuer's did:web document: every key it signs with (public)",
    )
    def did_json() -> Any:
        return JSONResponse(issuer.did_document(), media_type="application/did+json")

    @public.get("/.well-known/jwks.json", summary="The issuer's public keys as a JWKS (public)")
    def jwks_json() -> dict[str, Any]:
        return issuer.jwks()

    return public
