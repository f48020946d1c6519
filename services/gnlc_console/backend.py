"""The services' operator APIs as the console calls them, server-side, with the operator
token. A service that does not answer is ``BackendDown`` (the console shows a 503 page
naming it); one that answers 5xx or refuses the token is ``BackendFailed`` (502)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(15.0, connect=3.0)


class BackendError(Exception):
    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.message = message


class BackendDown(BackendError):
    """The service did not answer."""


class BackendFailed(BackendError):
    """The service answered, but not with an answer the console can use."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 300

    def errors(self) -> list[dict[str, Any]]:
        """A 422's ``detail`` list, or the string ``detail`` of another refusal as one item
        without a location."""
        detail = self.body.get("detail") if isinstance(self.body, dict) else None
        if isinstance(detail, list):
            return [item for item in detail if isinstance(item, dict)]
        return [{"loc": [], "msg": str(detail or f"refused ({self.status})")}]


class Backend:
    """One service's API (``name`` for the pages: "scheduler", "webhook service")."""

    def __init__(
        self,
        name: str,
        base_url: str,
        token: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def reachable(self) -> bool:
        """The service answers its liveness probe within two seconds."""
        try:
            response = await self._client.get("/health/live", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code < 500

    async def call_raw(self, method: str, path: str, body: bytes, content_type: str) -> Answer:
        """A request with a body as it is (a file to import)."""
        return await self.call(method, path, content=body, headers={"content-type": content_type})

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """The answer to a request; 4xx answers are returned for the page to show."""
        try:
            response = await self._client.request(
                method, path, json=json, params=params, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            raise BackendDown(
                self.name, f"does not answer at {self.base_url} ({type(exc).__name__})"
            ) from None
        if response.status_code in (401, 403):
            raise BackendFailed(
                self.name, "refuses the console's operator token (check GNLC_OPERATOR_TOKEN)"
            )
        if response.status_code >= 500:
            raise BackendFailed(self.name, f"answered {response.status_code}")
        try:
            body = response.json() if response.content else None
        except ValueError:
            raise BackendFailed(self.name, "answered something that is not JSON") from None
        return Answer(response.status_code, body)

    async def get(self, path: str, **params: Any) -> Any:
        """The body of a GET that must succeed (a 404 is ``NotFound``)."""
        answer = await self.call(
            "GET", path, params={k: v for k, v in params.items() if v is not None}
        )
        if answer.status == 404:
            raise NotFound(str((answer.body or {}).get("detail", path)))
        if not answer.ok:
            raise BackendFailed(self.name, f"GET {path} answered {answer.status}")
        return answer.body


class NotFound(Exception):
    """What the page asks for does not exist (the page answers 404)."""
