"""Which endpoints a partner token owns, as the webhook API says (it holds the partner
tokens): the status API never stores a partner token, it asks, and keeps the answer a
little while (by a hash of the token)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import httpx

CACHE_SECONDS = 30.0
MAX_CACHED = 1000


class PartnerUnknown(Exception):
    """The webhook API does not know the token."""


class PartnerDirectory:
    def __init__(
        self,
        webhook_api_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = httpx.AsyncClient(base_url=webhook_api_url, transport=transport, timeout=5.0)
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    async def endpoints_of(self, token: str) -> tuple[str, ...]:
        """The ids of the endpoints the partner with ``token`` owns; ``PartnerUnknown``
        when the webhook API refuses the token."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = await self._client.get(
            "/v1/endpoints", headers={"Authorization": f"Bearer {token}"}
        )
        if answer.status_code in (401, 403):
            raise PartnerUnknown
        answer.raise_for_status()
        owned = tuple(str(endpoint["id"]) for endpoint in answer.json())
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (now + CACHE_SECONDS, owned)
        return owned

    async def aclose(self) -> None:
        await self._client.aclose()
