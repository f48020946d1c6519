"""In-process stand-ins for the Kafka side of a consumer, shared by the unit tests: a broker
that keeps what it is asked to publish, and a consumed record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord


@dataclass
class RecordingBroker:
    """What the code under test publishes (dead letters, retries, operations), kept."""

    published: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)

    async def publish(
        self, value: Any, *, topic: str, key: bytes | None = None, headers: dict[str, str]
    ) -> None:
        self.published.append((topic, value, headers))

    def on(self, topic: str) -> list[tuple[Any, dict[str, str]]]:
        """(value, headers) of what was published on ``topic``, in order."""
        return [(value, headers) for t, value, headers in self.published if t == topic]


def record(
    topic: str, offset: int, value: bytes, *, key: bytes | None = None
) -> ConsumerRecord[bytes, bytes]:
    """A record as a consumer hands it over (partition 0)."""
    key_size = len(key) if key is not None else 0
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, key_size, len(value), ())
