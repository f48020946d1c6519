"""The endpoints in memory, for the hot path: refreshed from the database every few seconds
(other instances' changes) and at once after a change made through this instance's API."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Any

from gnlc_core.directory import Directory, DirectorySource
from gnlc_core.events import AnnouncementPublishedEvent, DeadlineReminderEvent
from gnlc_core.logs import get_logger
from gnlc_webhook.store import EndpointRow, Store

log = get_logger(__name__)
Event = DeadlineReminderEvent | AnnouncementPublishedEvent


def wants(endpoint: EndpointRow, event: Event, directory: Directory) -> bool:
    """Whether ``endpoint`` subscribes to ``event``: its type, and its filter if it has
    one (a region or city of the endpoint is among those the event's audience reaches)."""
    if event.type not in endpoint.event_types:
        return False
    if not endpoint.regions and not endpoint.cities:
        return True
    audience = event.data.audience
    if set(audience.cities) & set(endpoint.cities) or set(audience.regions) & set(endpoint.regions):
        return True
    regions, cities = set(endpoint.regions), set(endpoint.cities)
    return any(c.id in cities or c.region in regions for c in directory.resolve(audience))


class Registry:
    def __init__(self, store: Store, directory: DirectorySource, *, refresh_seconds: float) -> None:
        self._store = store
        self._directory = directory
        self._refresh_seconds = refresh_seconds
        self._by_id: dict[str, EndpointRow] = {}
        self._task: asyncio.Task[Any] | None = None

    def __len__(self) -> int:
        return len(self._by_id)

    def all(self) -> list[EndpointRow]:
        """Every endpoint known, whatever its state."""
        return list(self._by_id.values())

    def get(self, endpoint_id: str) -> EndpointRow | None:
        return self._by_id.get(endpoint_id)

    def subscribed(self, event: Event) -> list[EndpointRow]:
        """Every endpoint (whatever its state) that subscribes to ``event``."""
        return [e for e in self._by_id.values() if wants(e, event, self._directory.directory)]

    def update(self, endpoint_id: str, **changes: Any) -> EndpointRow | None:
        """Change the in-memory copy at once (the caller also writes the database)."""
        current = self._by_id.get(endpoint_id)
        if current is None:
            return None
        self._by_id[endpoint_id] = replace(current, **changes)
        return self._by_id[endpoint_id]

    async def refresh(self) -> None:
        rows = await self._store.endpoints()
        self._by_id = {row.id: row for row in rows}

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="webhook-registry-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except Exception as exc:  # keep the last good copy; the database may be back soon
                log.warning("endpoint refresh failed", error=f"{type(exc).__name__}: {exc}")
