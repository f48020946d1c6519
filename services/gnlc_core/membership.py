"""Whether a consumer has joined its group: part of a service's readiness ("consuming")."""

from __future__ import annotations

from aiokafka import ConsumerRebalanceListener, TopicPartition


class Membership(ConsumerRebalanceListener):  # type: ignore[misc]
    """A rebalance listener that notes the first assignment (possibly empty: a group may
    have more members than partitions) and passes every rebalance on to ``inner``."""

    def __init__(self, inner: ConsumerRebalanceListener | None = None) -> None:
        self.joined = False
        self._inner = inner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self._inner is not None:
            await self._inner.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.joined = True
        if self._inner is not None:
            await self._inner.on_partitions_assigned(assigned)
