"""Each endpoint's health over a window, from the delivery log (``webhook_attempts``):
how many requests were made, how many succeeded, and the latency's median and 95th
percentile.

Bounded: the counts are one grouped query; the latencies are those of each endpoint's
latest ``SAMPLE`` requests in the window (one indexed query per endpoint, on
``(endpoint_id, at)``), so a busy endpoint costs no more than a quiet one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.ledger import Status
from gnlc_webhook.store import attempts

#: The latest requests per endpoint whose latencies make the percentiles.
SAMPLE = 1000


def percentile(sorted_values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` in 0..1) of ascending values (pure)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Health:
    endpoint_id: str
    requests: int
    delivered: int
    p50_ms: float | None
    p95_ms: float | None
    sampled: int

    @property
    def success_rate(self) -> float | None:
        return self.delivered / self.requests if self.requests else None


async def health(
    engine: AsyncEngine, endpoint_ids: Sequence[str], since: datetime, until: datetime
) -> list[Health]:
    """The health of ``endpoint_ids`` in [since, until): only attempts that made a request
    (a latency was measured) count; a delivered one is a success."""
    made = attempts.c.latency_ms.is_not(None)
    window = (attempts.c.at >= since, attempts.c.at < until)
    counts_query = (
        select(
            attempts.c.endpoint_id,
            func.count(),
            func.sum(case((attempts.c.status == Status.DELIVERED.value, 1), else_=0)),
        )
        .where(made, *window, attempts.c.endpoint_id.in_(list(endpoint_ids)))
        .group_by(attempts.c.endpoint_id)
    )
    result: list[Health] = []
    async with engine.connect() as connection:
        counts = {
            row[0]: (int(row[1]), int(row[2] or 0))
            for row in (await connection.execute(counts_query)).all()
        }
        for endpoint_id in endpoint_ids:
            requests, delivered = counts.get(endpoint_id, (0, 0))
            latencies: list[float] = []
            if requests:
                sample = (
                    select(attempts.c.latency_ms)
                    .where(attempts.c.endpoint_id == endpoint_id, made, *window)
                    .order_by(attempts.c.at.desc())
                    .limit(SAMPLE)
                )
                latencies = sorted(float(v) for v in (await connection.execute(sample)).scalars())
            result.append(
                Health(
                    endpoint_id,
                    requests,
                    delivered,
                    percentile(latencies, 0.5),
                    percentile(latencies, 0.95),
                    len(latencies),
                )
            )
    return result
