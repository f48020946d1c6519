"""Kafka wiring shared by every service: topic names, topic creation, the broker, publishing.

Delivery guarantees live here so no service forgets them: the producer is idempotent with
``acks=all``; subscribers commit an offset only after the record is handled
(``AckPolicy.NACK_ON_ERROR``: an unexpected error rewinds to the record instead of
committing past it). Topics are created with ``GNLC_TOPIC_REPLICATION`` replicas and
``min.insync.replicas`` one fewer (at least one): on a 3-broker cluster an acknowledged
record is on two brokers at least, and the topics stay writable with one broker down.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy

from gnlc_core import tracing
from gnlc_core.events import CONTENT_TYPE, CloudEvent, encode_event
from gnlc_core.settings import Settings

#: Subscribers acknowledge (commit) only after handling; errors rewind, never skip.
AT_LEAST_ONCE = AckPolicy.NACK_ON_ERROR

#: The producer's batch size (aiokafka's default is 16 KiB): explicit batches stay under it.
PRODUCER_BATCH_BYTES = 512 * 1024
#: The largest request the producer sends (aiokafka's default, and under the broker's
#: default ``message.max.bytes``): no record can be larger.
PRODUCER_MAX_REQUEST_BYTES = 1024 * 1024
#: The largest encoded event the APIs accept: the request limit less room for the record's
#: key, headers and batch framing. Larger events are refused before anything is stored.
MAX_EVENT_BYTES = PRODUCER_MAX_REQUEST_BYTES - 16 * 1024

#: Consumer group membership: a member that dies (kill -9) is noticed after this long (the
#: broker's minimum by default), so its partitions come back within seconds, not ten or more.
GROUP_SESSION_MS = 6000
GROUP_HEARTBEAT_MS = 1000
#: How long the broker holds a fetch of partitions with nothing new. aiokafka keeps one fetch
#: in flight per broker, and a partition whose records were still in hand when that fetch
#: went out is not in it: it waits for the fetch to come back before its own goes. With the
#: default 500 ms, the last records of a backlog on one partition waited 0.3-0.4 s behind a
#: fetch of the quiet domain topics. Also how soon a resumed retry tier is read again.
FETCH_WAIT_MS = 100

_RETRY_TIER = re.compile(r"\.retry\.\d+s$")

REASON_HEADER = "x-gnlc-dead-letter-reason"
RECIPIENT_HEADER = "x-gnlc-recipient"
SOURCE_TOPIC_HEADER = "x-gnlc-source-topic"


#: The delivery channels, each a package ``gnlc_<channel>`` running in a
#: ``gnlc_core.channel.ChannelRuntime``: their dead-letter topics are created and
#: documented from this (README: "Adding a channel").
CHANNELS: tuple[str, ...] = ("email", "webhook")


@dataclass(frozen=True)
class Topics:
    """Every topic the system uses, under one prefix."""

    prefix: str

    @property
    def deadline_reminder(self) -> str:
        return f"{self.prefix}deadline.reminder"

    @property
    def announcement_published(self) -> str:
        return f"{self.prefix}announcement.published"

    @property
    def deadline_updated(self) -> str:
        """A deadline's calendar entry changed (email only)."""
        return f"{self.prefix}deadline.updated"

    @property
    def deadline_cancelled(self) -> str:
        """A deadline's calendar entry withdrawn (email only)."""
        return f"{self.prefix}deadline.cancelled"

    @property
    def changes(self) -> tuple[str, ...]:
        """The changes of deadlines' calendar entries, which only the email service reads."""
        return (self.deadline_updated, self.deadline_cancelled)

    @property
    def deadline_submitted(self) -> str:
        """Compacted; key ``deadline_id/city_id``. Partners and the operator API write it."""
        return f"{self.prefix}deadline.submitted"

    @property
    def directory(self) -> str:
        """Compacted; key city id, value the city as JSON. Only the scheduler writes it."""
        return f"{self.prefix}directory.cities"

    @property
    def notice_status(self) -> str:
        """Receipts: every change of a notice's state (``gnlc_core.receipts``)."""
        return f"{self.prefix}notice.status"

    @property
    def scheduler_dead_letter(self) -> str:
        return f"{self.prefix}scheduler.dead-letter"

    @property
    def compacted(self) -> tuple[str, ...]:
        return (self.deadline_submitted, self.directory)

    def dead_letter(self, channel: str) -> str:
        """Where ``channel`` parks what it cannot deliver (``<prefix><channel>.dead-letter``)."""
        return f"{self.prefix}{channel}.dead-letter"

    @property
    def email_dead_letter(self) -> str:
        return self.dead_letter("email")

    @property
    def webhook_dead_letter(self) -> str:
        return self.dead_letter("webhook")

    @property
    def domain(self) -> tuple[str, ...]:
        return (self.deadline_reminder, self.announcement_published)

    @property
    def all(self) -> tuple[str, ...]:
        return (
            *self.domain,
            *self.changes,
            *self.compacted,
            self.notice_status,
            self.scheduler_dead_letter,
            *(self.dead_letter(channel) for channel in CHANNELS),
        )

    def for_event_type(self, event_type: str) -> str:
        return f"{self.prefix}{event_type}"

    def retry_tier(self, channel: str, seconds: float) -> str:
        """The tier topic where ``channel``'s retries wait ``seconds`` (gnlc_core.ladder)."""
        return f"{self.prefix}{channel}.retry.{int(seconds)}s"

    def retry_tiers_pattern(self, channel: str) -> str:
        """Every tier topic of ``channel``, those of older ladders or schedules included."""
        return f"^{re.escape(f'{self.prefix}{channel}')}\\.retry\\.\\d+s$"

    def group(self, name: str) -> str:
        """A consumer group id under the same prefix (``email``, ``webhook`` ...)."""
        return f"{self.prefix}{name}"


def topics_for(settings: Settings) -> Topics:
    return Topics(settings.topic_prefix)


class TopicsNotCreated(RuntimeError):
    """The cluster refused to create topics (too few brokers for the replication factor,
    a setting it rejects); the message has the broker's reason for each."""


#: CreateTopics error codes that mean the topic is there: none, TOPIC_ALREADY_EXISTS
_TOPIC_THERE = frozenset({0, 36})


def min_insync_replicas(replication: int, configured: int | None = None) -> int:
    """The replicas a record must reach before ``acks=all`` is answered: ``configured``, or
    one fewer than ``replication`` and at least one (2 of 3: an acknowledged record
    survives losing a broker, and the topic stays writable while one is down)."""
    if configured is not None:
        return configured
    return max(1, replication - 1)


async def ensure_topics(settings: Settings, extra: Sequence[str] = ()) -> list[str]:
    """Create every topic (and ``extra``) that does not exist yet; returns those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        topics = topics_for(settings)
        names = [*topics.all, *extra]
        wanted = [name for name in dict.fromkeys(names) if name not in existing]
        if not wanted:
            return []
        min_insync = min_insync_replicas(
            settings.topic_replication, settings.topic_min_insync_replicas
        )
        with suppress(TopicAlreadyExistsError):  # another instance may win the race
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=name,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication,
                        topic_configs={
                            "min.insync.replicas": str(min_insync),
                            **_topic_config(topics, name),
                        },
                    )
                    for name in wanted
                ]
            )
            refused = [
                f"{error['topic']}: {error['error_message'] or 'error ' + str(error['error_code'])}"
                for error in response.to_object()["topic_errors"]
                if error["error_code"] not in _TOPIC_THERE
            ]
            if refused:
                raise TopicsNotCreated(
                    f"the brokers at {settings.kafka_bootstrap_servers} refused to create "
                    f"{len(refused)} topic(s) with GNLC_TOPIC_REPLICATION="
                    f"{settings.topic_replication} and min.insync.replicas={min_insync}: "
                    + "; ".join(refused[:3])
                )
        await _leaders_elected(admin, wanted)
        return wanted
    finally:
        await admin.close()


async def _leaders_elected(
    admin: AIOKafkaAdminClient, names: list[str], *, within: float = 10.0
) -> None:
    """Wait (a little while) until every partition of the new topics has a leader: the
    first records sent to a topic just created would otherwise wait for it in the
    producer's retries (a retry published then would be late by that long)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        described = await admin.describe_topics(names)
        if len(described) == len(names) and all(
            topic["error_code"] == 0
            and topic["partitions"]
            and all(partition["leader"] >= 0 for partition in topic["partitions"])
            for topic in described
        ):
            return
        await asyncio.sleep(0.1)


def _topic_config(topics: Topics, name: str) -> dict[str, str]:
    if name in topics.compacted:
        return {"cleanup.policy": "compact"}
    if _RETRY_TIER.search(name):
        # the broker stamps each record as it appends it: a tier's records are ready in
        # offset order, whichever producer wrote them (gnlc_core.ladder)
        return {"message.timestamp.type": "LogAppendTime"}
    return {}


async def partitions_of(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, from fresh cluster metadata (a started consumer's own
    metadata only covers what it subscribed to)."""
    cluster = await consumer._client.fetch_all_metadata()
    return [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in sorted(cluster.partitions_for_topic(topic) or ())
    ]


def bootstrap_list(servers: str) -> list[str]:
    """The ``host:port`` entries of a comma-separated bootstrap list. FastStream passes a
    string on to aiokafka as a list of one, which aiokafka then does not split: a cluster's
    ``a:9092,b:9092`` would be looked up as one host name."""
    return [server.strip() for server in servers.split(",") if server.strip()]


def make_broker(
    settings: Settings, *, client_id: str, middlewares: Sequence[Any] = ()
) -> KafkaBroker:
    """A broker whose producer is idempotent and whose per-message logs stay at DEBUG
    (``middlewares``: FastStream middlewares, such as ``ServiceMetrics.broker_middlewares``)."""
    return KafkaBroker(
        bootstrap_list(settings.kafka_bootstrap_servers),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        max_batch_size=PRODUCER_BATCH_BYTES,  # bursts: fewer, fuller produce requests
        max_request_size=PRODUCER_MAX_REQUEST_BYTES,
        allow_auto_create_topics=False,
        log_level=logging.DEBUG,
        logger=logging.getLogger("faststream.gnlc"),
        graceful_timeout=30.0,
        middlewares=tuple(middlewares),
    )


async def publish_event(broker: KafkaBroker, topics: Topics, event: CloudEvent) -> None:
    """Publish one event in structured mode, keyed by its partition key; waits for the ack.
    With tracing on, a PRODUCER span whose context the event carries (``traceparent``)."""
    topic = topics.for_event_type(event.type)
    with tracing.send_span(topic, event) as traced:
        await broker.publish(
            encode_event(traced),
            topic=topic,
            key=event.partitionkey.encode(),
            headers={"content-type": CONTENT_TYPE},
        )


async def publish_dead_letter(
    broker: KafkaBroker,
    topic: str,
    *,
    value: bytes,
    key: bytes | None,
    reason: str,
    source_topic: str,
    recipient: str | None = None,
) -> None:
    """Park a record on a dead-letter topic with the reason it could not be handled."""
    headers = {REASON_HEADER: reason[:1000], SOURCE_TOPIC_HEADER: source_topic}
    if recipient is not None:
        headers[RECIPIENT_HEADER] = recipient
    await broker.publish(value, topic=topic, key=key, headers=headers)


async def records_only(_message: StreamMessage[Any]) -> None:
    """A decoder for batch handlers that read the raw records themselves: FastStream's own
    decoding of every record (JSON, a message object each) would be thrown away."""
    return
