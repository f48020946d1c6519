"""Consumer lag, read at scrape time: for each consumer group of the service, the log end
offset of every partition of its topics less the group's committed offset (the same figure
as ``kafka-consumer-groups.sh --describe`` and KEDA's Kafka scaler). It is the group's, not
the instance's: every instance of a service reports the same values, so dashboards and rules
take ``max by (group, topic, partition)``.

The retry tiers' group lag is the retry backlog: records waiting in the tiers
(``gnlc_retry_backlog{channel,tier}``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gnlc_core.kafka import partitions_of
from gnlc_core.metrics import PREFIX, ServiceMetrics

#: Scrapes closer together than this reuse the last reading (several scrapers, one broker).
MIN_INTERVAL_SECONDS = 1.0

_TIER = ".retry."


def lag_of(
    end: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int],
    beginning: Mapping[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Per partition: the end offset less the committed one, or less the log start when
    the group has committed nothing there (it reads from the earliest); never negative."""
    lag: dict[TopicPartition, int] = {}
    for partition, last in end.items():
        start = committed.get(partition, beginning.get(partition, last))
        lag[partition] = max(last - start, 0)
    return lag


def tier_label(topic: str) -> str | None:
    """``30s`` for ``<prefix><channel>.retry.30s``; None for another topic."""
    head, found, tier = topic.rpartition(_TIER)
    return tier if found and head else None


@dataclass(frozen=True)
class Group:
    """A consumer group to watch: its id, its topics, and for a retry-tier group the
    channel whose backlog it is."""

    group_id: str
    topics: Sequence[str]
    retry_channel: str | None = None


@dataclass
class _Reading:
    lag: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)
    at: float = 0.0


class LagProbe(Collector):
    """Reads the lag of ``groups`` when asked (``refresh``) and serves the last reading."""

    def __init__(self, bootstrap_servers: str, groups: Sequence[Group]) -> None:
        self._bootstrap = bootstrap_servers
        self._groups = list(groups)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reading = _Reading()

    def register(self, registry: CollectorRegistry) -> LagProbe:
        registry.register(self)
        return self

    async def start(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await admin.start()
        try:
            await consumer.start()
        except BaseException:
            await admin.close()
            raise
        self._admin, self._consumer = admin, consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._admin = self._consumer = None

    async def refresh(self) -> None:
        admin, consumer = self._admin, self._consumer
        if admin is None or consumer is None:
            return
        if time.monotonic() - self._reading.at < MIN_INTERVAL_SECONDS:
            return
        partitions = await partitions_of(
            consumer, sorted({t for g in self._groups for t in g.topics})
        )
        end = await consumer.end_offsets(partitions)
        beginning = await consumer.beginning_offsets(partitions)
        reading = _Reading(at=time.monotonic())
        for group in self._groups:
            offsets = await admin.list_consumer_group_offsets(group.group_id)
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            mine = set(group.topics)
            reading.lag[group.group_id] = lag_of(
                {tp: n for tp, n in end.items() if tp.topic in mine}, committed, beginning
            )
        self._reading = reading

    def describe(self) -> Iterator[Metric]:
        yield from self._families({})

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self._reading.lag)

    def _families(self, lags: Mapping[str, Mapping[TopicPartition, int]]) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            f"{PREFIX}_kafka_consumer_lag",
            "Records on a partition not yet committed by the consumer group (log end offset "
            "less committed offset), read at scrape time; the group's, the same on every "
            "instance",
            labels=["group", "topic", "partition"],
        )
        backlog = GaugeMetricFamily(
            f"{PREFIX}_retry_backlog",
            "Records waiting in a channel's retry tier topics, by tier",
            labels=["channel", "tier"],
        )
        for group in self._groups:
            per_tier: dict[str, int] = {}
            for tp, n in sorted(lags.get(group.group_id, {}).items()):
                lag.add_metric([group.group_id, tp.topic, str(tp.partition)], n)
                tier = tier_label(tp.topic)
                if group.retry_channel is not None and tier is not None:
                    per_tier[tier] = per_tier.get(tier, 0) + n
            for tier, n in sorted(per_tier.items()):
                backlog.add_metric([group.retry_channel or "", tier], n)
        yield lag
        yield backlog


def watch_lag(metrics: ServiceMetrics, bootstrap_servers: str, groups: Sequence[Group]) -> LagProbe:
    """A ``LagProbe`` for ``groups`` in ``metrics``: started and stopped with the service,
    read before each scrape."""
    probe = LagProbe(bootstrap_servers, groups).register(metrics.registry)
    metrics.on_start(probe.start, probe.stop)
    metrics.before_scrape(probe.refresh)
    return probe
