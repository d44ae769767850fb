"""The public routes' rate limit: so many requests per client address in a moving window.

Certificate verification, health and readiness need no credential, so nothing but this stops
one client from asking as fast as it can: a verification code is 120 random bits (K4), beyond
any guessing, and the limit keeps it so however a client tries. Counted in the process (a
moving window, `limits`), so each API process allows the rate on its own; behind a proxy, run
uvicorn with the proxy's address trusted so the client's own address is the one counted.
"""

from __future__ import annotations

import math
import time

from fastapi import HTTPException, Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class PublicRateLimit:
    """A FastAPI dependency: 429 with `Retry-After` once a client passes `rate`."""

    def __init__(self, rate: str) -> None:
        self.rate = rate
        self._item = parse(rate)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def __call__(self, request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        if self._limiter.hit(self._item, client):
            return
        reset_at, _ = self._limiter.get_window_stats(self._item, client)
        wait = max(1, math.ceil(reset_at - time.time()))
        raise HTTPException(
            status_code=429,
            detail=f"too many requests from {client}: at most {self.rate} on the public "
            f"routes; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
