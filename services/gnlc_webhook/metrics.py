"""The webhook service's own metrics: endpoint health and deliveries held.

These carry the endpoint id as a label: endpoints are few (an operator or a partner adds
each), unlike events or cities, which never appear in a label."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gnlc_core.metrics import PREFIX, ServiceMetrics
from gnlc_webhook.registry import Registry
from gnlc_webhook.store import EndpointRow, State, Store


def failing_seconds(endpoint: EndpointRow, now: datetime) -> float:
    """How long the endpoint has been failing without a success in between (0 if not)."""
    if endpoint.failing_since is None:
        return 0.0
    since = endpoint.failing_since
    if since.tzinfo is None:  # SQLite hands back naive UTC
        since = since.replace(tzinfo=UTC)
    return max((now - since).total_seconds(), 0.0)


class WebhookMetrics(Collector):
    """Read at scrape time: the endpoints from the registry (in memory), the held
    deliveries from the database (``refresh``, before each scrape)."""

    def __init__(self, metrics: ServiceMetrics, registry: Registry, store: Store) -> None:
        self._registry = registry
        self._store = store
        self._held: dict[str, int] = {}
        metrics.registry.register(self)
        metrics.before_scrape(self.refresh)

    async def refresh(self) -> None:
        self._held = await self._store.held_counts()

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        endpoints = sorted(self._registry.all(), key=lambda e: e.id)
        state = GaugeMetricFamily(
            f"{PREFIX}_webhook_endpoint_state",
            "1 for the endpoint's state (active, paused, disabled), 0 for the others",
            labels=["endpoint", "state"],
        )
        failing = GaugeMetricFamily(
            f"{PREFIX}_webhook_endpoint_failing_seconds",
            "How long the endpoint has failed every request since its last success (0 when "
            "it is not failing); it is disabled after GNLC_WEBHOOK_DISABLE_AFTER_SECONDS",
            labels=["endpoint"],
        )
        held = GaugeMetricFamily(
            f"{PREFIX}_webhook_held_deliveries",
            "Deliveries put aside while their endpoint hangs, waiting for it to answer again",
            labels=["endpoint"],
        )
        for endpoint in endpoints:
            for value in State:
                state.add_metric([endpoint.id, value.value], float(endpoint.state is value))
            failing.add_metric([endpoint.id], failing_seconds(endpoint, now))
            held.add_metric([endpoint.id], self._held.get(endpoint.id, 0))
        yield state
        yield failing
        yield held
