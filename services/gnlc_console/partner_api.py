"""The webhook service's API as the partner portal calls it: server-side, with the signed-in
partner's own token (never the operator's), so the API's own scoping decides what the
partner sees. A token the API no longer accepts (a new one was issued) is
``PartnerTokenRefused``: the portal ends the session and asks to sign in again."""

from __future__ import annotations

from typing import Any

import httpx

from gnlc_console.backend import TIMEOUT, Answer, BackendDown, BackendFailed, NotFound

SERVICE = "webhook service"


class PartnerTokenRefused(Exception):
    """The webhook API refuses the session's partner token (401)."""


class PartnerApi:
    def __init__(self, base_url: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=TIMEOUT,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        token: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Answer:
        """The answer as the partner; 4xx other than 401 and 403 come back for the page."""
        try:
            response = await self._client.request(
                method,
                path,
                json=json,
                params=params,
                headers={"authorization": f"Bearer {token}"},
            )
        except httpx.TransportError as exc:
            raise BackendDown(
                SERVICE, f"does not answer at {self.base_url} ({type(exc).__name__})"
            ) from None
        if response.status_code == 401:
            raise PartnerTokenRefused
        if response.status_code == 403 or response.status_code >= 500:
            raise BackendFailed(SERVICE, f"answered {response.status_code} to {method} {path}")
        try:
            body = response.json() if response.content else None
        except ValueError:
            raise BackendFailed(SERVICE, "answered something that is not JSON") from None
        return Answer(response.status_code, body)

    async def get(self, token: str, path: str, **params: Any) -> Any:
        """The body of a GET that must succeed (a 404 is ``NotFound``)."""
        answer = await self.call(
            token, "GET", path, params={k: v for k, v in params.items() if v is not None}
        )
        if answer.status == 404:
            raise NotFound(str((answer.body or {}).get("detail", path)))
        if not answer.ok:
            raise BackendFailed(SERVICE, f"GET {path} answered {answer.status}")
        return answer.body
