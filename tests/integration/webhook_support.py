"""Helpers of the webhook tests: the service with test settings, its API, events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.integration.conftest import System
from tests.integration.hooks import Hooks, serving
from tests.support import HTTP, Service

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "schemas" / "examples" / "deadline.reminder" / "valid" / "overdue-minimal.json"

#: the default schedule (5 s ... 10 h) shrunk 5000 times: a whole day in about 20 seconds
SCALED = {"GNLC_WEBHOOK_RETRY_TIME_SCALE": "0.0002"}


def event(**changes: Any) -> tuple[str, bytes]:
    """A valid deadline.reminder with a fresh id; returns (id, record value)."""
    value = json.loads(EXAMPLE.read_text())
    value["id"] = str(uuid.uuid4())
    value["time"] = datetime.now(UTC).isoformat()
    value.update(changes)
    return value["id"], json.dumps(value).encode()


class Api:
    def __init__(self, service: Service, token: str) -> None:
        self.service = service
        self.token = token

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token or self.token}"}
        return HTTP.request(
            method, f"{self.service.url}/v1{path}", headers=headers, timeout=30, **kw
        )

    def partner(self, partner_id: str) -> str:
        """Register a partner; returns its token."""
        response = self.call("POST", "/partners", json={"id": partner_id, "name": partner_id})
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def endpoint(self, token: str, url: str, **fields: Any) -> dict[str, Any]:
        body = {"url": url, "event_types": ["deadline.reminder"], **fields}
        response = self.call("POST", "/endpoints", token, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


@contextmanager
def hooks_server() -> Iterator[tuple[Hooks, str]]:
    hooks = Hooks()
    with serving(hooks) as server:
        yield hooks, f"{server.url}/hooks"


def start_webhook(system: System, **env: str) -> tuple[Service, Api]:
    service = system.service("webhook", **env).start()
    return service, Api(service, system.token)


def delete_endpoints_of_the_test(api: Api) -> None:
    """Delete every endpoint but the partners file's ``partner-a``: what a test registered
    on a service shared by its module, so that no later test's events go to them."""
    for endpoint in api.call("GET", "/endpoints").json():
        if endpoint["id"] != "partner-a":
            deleted = api.call("DELETE", f"/endpoints/{endpoint['id']}")
            assert deleted.status_code == 204, deleted.text
