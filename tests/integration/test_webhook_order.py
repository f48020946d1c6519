"""An ordered endpoint on the real broker: one partition key's deliveries in order, the
next held until the one before is settled, other keys not held up. On PostgreSQL (the unit
tests run the same queries on SQLite)."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.conftest import System
from tests.integration.hooks import Answer
from tests.integration.kafka_io import produce
from tests.integration.webhook_support import event, hooks_server, start_webhook

pytestmark = pytest.mark.integration


def send(system: System, key: str, *values: bytes) -> None:
    topic = f"{system.prefix}deadline.reminder"
    asyncio.run(produce(system.kafka, topic, *values, key=key.encode()))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_ordered_endpoint_gets_a_keys_events_in_order_and_other_keys_meanwhile(
    system: System,
) -> None:
    _service, api = start_webhook(
        system,
        GNLC_WEBHOOK_RETRY_DELAYS="[2]",  # a1's retry comes 2 s after its 500
        GNLC_WEBHOOK_RETRY_JITTER="0",
        GNLC_WEBHOOK_HOLD_CHECK_SECONDS="0.5",
    )
    with hooks_server() as (hooks, base):
        token = api.partner("partner-o")
        endpoint = api.endpoint(token, f"{base}/ordered", ordered=True)
        assert endpoint["ordered"] is True
        hooks.secrets["ordered"] = [endpoint["secret"]]
        hooks.scripts["ordered"] = [Answer(500)]  # the first request: a1's first attempt

        a1 = event(partitionkey="deadline-a")
        send(system, "deadline-a", a1[1])
        assert hooks.wait("ordered", 1, timeout=30)
        a_rest = [event(partitionkey="deadline-a") for _ in range(3)]
        b = [event(partitionkey="deadline-b") for _ in range(3)]
        send(system, "deadline-a", *(value for _, value in a_rest))
        send(system, "deadline-b", *(value for _, value in b))

        a_ids = [a1[0], *(event_id for event_id, _ in a_rest)]
        assert hooks.wait("ordered", 1 + 3 + 4, timeout=60), [
            h.webhook_id for h in hooks.of("ordered")
        ]
        hits = hooks.of("ordered")
        order = [h.webhook_id for h in hits]
        assert [i for i in order if i in a_ids] == [a1[0], *a_ids]  # a1 twice, then in order
        # key b was not held up by a1's failure: all of it arrived before a1's retry
        retry_at = [h.at for h in hits if h.webhook_id == a1[0]][1]
        b_at = [h.at for h in hits if h.webhook_id in {event_id for event_id, _ in b}]
        assert len(b_at) == 3
        assert max(b_at) < retry_at
        # and a's later events came only once a1 was delivered
        first_of_rest = min(h.at for h in hits if h.webhook_id in a_ids[1:])
        assert first_of_rest >= retry_at
