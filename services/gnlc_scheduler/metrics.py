"""The scheduler's own metrics: outbox rows waiting, how late due rows are, and how late
events were published (their due instant to the broker's acknowledgement)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from prometheus_client import Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.metrics import LATENESS_BUCKETS, PREFIX, ServiceMetrics
from gnlc_scheduler import store
from gnlc_scheduler.dispatcher import utc_now


class SchedulerMetrics:
    def __init__(self, metrics: ServiceMetrics, engine: AsyncEngine) -> None:
        self._engine = engine
        registry = metrics.registry
        self.rows = Gauge(
            f"{PREFIX}_scheduler_outbox_rows",
            "Outbox rows still to publish (pending, claimed) or parked, by state; read at "
            "scrape time from the scheduler's database (every instance sees the same rows)",
            ["state"],
            registry=registry,
        )
        self.overdue = Gauge(
            f"{PREFIX}_scheduler_outbox_overdue_seconds",
            "How long the earliest pending row has been due (0 when none is): grows when "
            "no instance publishes",
            registry=registry,
        )
        self.lateness = Histogram(
            f"{PREFIX}_scheduler_lateness_seconds",
            "Time from an event's due instant to its publication being acknowledged",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        metrics.before_scrape(self.refresh)

    async def refresh(self) -> None:
        now = utc_now()
        counts, oldest = await store.waiting(self._engine, now)
        for state, count in counts.items():
            self.rows.labels(state).set(count)
        self.overdue.set(max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)

    def emitted(self, rows: Sequence[store.Due], at: datetime) -> None:
        """``Dispatcher(on_emitted=...)``: the rows just published."""
        for row in rows:
            self.lateness.observe(max((at - row.fire_at).total_seconds(), 0.0))
