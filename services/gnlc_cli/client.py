"""The HTTP side of the CLI: one call to the scheduler's or the webhook service's API, the
operator token, and every refusal turned into a message on stderr and an exit code.

Exit codes: 0 done, 1 the API refused (its message is printed), 2 the command cannot be
sent (no token, no answer from the API, bad option).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import typer

TOKEN_FILE = Path(".local") / "operator-token"
DEFAULT_API = "http://127.0.0.1:8100"
DEFAULT_WEBHOOK_API = "http://127.0.0.1:8102"
DEFAULT_STATUS_API = "http://127.0.0.1:8104"
MERGE_PATCH = "application/merge-patch+json"

# Tests put an httpx transport here to answer the CLI without a network.
transport: httpx.BaseTransport | None = None


def token_file(start: Path | None = None) -> Path | None:
    """``.local/operator-token`` in the working directory or the nearest parent holding one
    (the run command writes it there)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / TOKEN_FILE
        if candidate.is_file():
            return candidate
    return None


def resolve_token(given: str) -> str | None:
    """``--token`` or ``GNLC_OPERATOR_TOKEN`` (typer fills ``given`` from both), else the
    file the run command wrote."""
    if given.strip():
        return given.strip()
    path = token_file()
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the returned exception."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def problems(detail: Any) -> list[str]:
    """An API error's ``detail`` as one line per problem: a string, or FastAPI's list of
    ``{loc, msg, type}`` (``body``/``query``/``path`` left out of the location)."""
    if isinstance(detail, list):
        lines = []
        for item in detail:
            if not isinstance(item, dict):
                lines.append(str(item))
                continue
            loc = [str(p) for p in item.get("loc") or []]
            if loc and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:]
            where = ".".join(loc)
            message = str(item.get("msg", item))
            lines.append(f"{where}: {message}" if where else message)
        return lines or ["(no detail)"]
    if isinstance(detail, dict):
        return [f"{key}: {value}" for key, value in detail.items()]
    return [str(detail)]


def _detail(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return [response.text.strip() or response.reason_phrase]
    if isinstance(body, dict) and "detail" in body:
        return problems(body["detail"])
    return [response.text.strip()]


def _route_missing(response: httpx.Response) -> bool:
    """405, or FastAPI's bare 404 for a path no route matches (an older service)."""
    if response.status_code == 405:
        return True
    if response.status_code != 404:
        return False
    try:
        return bool(response.json() == {"detail": "Not Found"})
    except ValueError:
        return True


class Api:
    """One of the two APIs (scheduler or webhooks), called with the operator token."""

    def __init__(self, base: str, token: str, *, name: str = "scheduler") -> None:
        self.base = base.rstrip("/")
        self.name = name
        self._token = token

    @classmethod
    def connect(cls, base: str, token: str, *, name: str = "scheduler") -> Api:
        resolved = resolve_token(token)
        if resolved is None:
            raise fail(
                "no operator token: set GNLC_OPERATOR_TOKEN or pass --token "
                f"(deploy/run-local.sh writes one to {TOKEN_FILE})",
                2,
            )
        return cls(base, resolved, name=name)

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            headers={"authorization": f"Bearer {self._token}"},
            timeout=timeout,
            transport=transport,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | Iterator[bytes] | None = None,
        content_type: str | None = None,
        params: dict[str, Any] | None = None,
        missing: str | None = None,
        timeout: float = 30,
    ) -> Any:
        """One call; its JSON answer (None when empty). A refusal prints every problem the
        API named and exits 1; ``missing`` is the message for a route this API lacks."""
        headers = {"content-type": content_type} if content_type else {}
        try:
            with self.client(timeout) as client:
                response = client.request(
                    method,
                    path,
                    json=json,
                    content=content,
                    params=params,
                    headers=headers,
                )
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach the {self.name} API at {self.base}: {exc}", 2) from None
        if response.status_code >= 400:
            if _route_missing(response) and missing:
                raise fail(
                    f"{missing} (the {self.name} API at {self.base} answered "
                    f"{response.status_code} to {method} {path}: it may be an older version)"
                )
            lines = _detail(response)
            prefix = f"error ({response.status_code}): "
            if len(lines) == 1:
                typer.echo(prefix + lines[0], err=True)
            else:
                typer.echo(f"{prefix}{len(lines)} problems:", err=True)
                for line in lines:
                    typer.echo(f"  {line}", err=True)
            raise typer.Exit(1)
        return response.json() if response.content else None


def compact(values: dict[str, Any], keep: Sequence[str] = ()) -> dict[str, Any]:
    """``values`` without the entries that are None (except those named in ``keep``)."""
    return {k: v for k, v in values.items() if v is not None or k in keep}
