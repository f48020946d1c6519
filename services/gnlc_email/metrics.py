"""The email service's own metrics: the SMTP connection pool."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gnlc_core.metrics import PREFIX
from gnlc_email.sender import SmtpPool


class SmtpPoolMetrics(Collector):
    """``gnlc_smtp_connections{state="in_use"|"idle"}`` and ``gnlc_smtp_connections_max``,
    read from the pool at scrape time."""

    def __init__(self, pool: SmtpPool) -> None:
        self._pool = pool

    def register(self, registry: CollectorRegistry) -> SmtpPoolMetrics:
        registry.register(self)
        return self

    def collect(self) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            f"{PREFIX}_smtp_connections",
            "SMTP connections of this instance: sending a message (in_use) or open and "
            "waiting for the next (idle)",
            labels=["state"],
        )
        connections.add_metric(["in_use"], self._pool.in_use)
        connections.add_metric(["idle"], self._pool.idle)
        yield connections
        yield GaugeMetricFamily(
            f"{PREFIX}_smtp_connections_max",
            "The pool's size (GNLC_SMTP_CONNECTIONS): the send concurrency",
            value=self._pool.size,
        )
