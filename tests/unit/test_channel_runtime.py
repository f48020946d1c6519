"""The runtime every channel shares (``gnlc_core.channel``): what it names after the
channel, the listeners it gives a ledger, and its periodic jobs. Consuming, readiness and
start-up run on the real broker in the email and webhook integration tests."""

from __future__ import annotations

import asyncio

import pytest

from gnlc_core.channel import ChannelRuntime
from gnlc_core.metrics import NoticeMetrics
from gnlc_core.receipts import ReceiptPublisher, Subjects
from gnlc_core.retry import RetrySchedule
from gnlc_core.settings import Settings


def _runtime(name: str) -> ChannelRuntime:
    settings = Settings(topic_prefix="unit.")
    return ChannelRuntime(settings, name, RetrySchedule((1.0,)), title=f"{name} service")


@pytest.mark.parametrize("name", ["email", "webhook", "sms"])
def test_a_channel_is_named_everywhere_after_itself(name: str) -> None:
    runtime = _runtime(name)
    assert runtime.dead_letter_topic == f"unit.{name}.dead-letter"
    assert runtime.retrier.topic_names[0] == f"unit.{name}.retry.0s"
    assert all(t.startswith(f"unit.{name}.retry.") for t in runtime.retrier.topic_names)
    assert not runtime.consuming()  # nothing joined before it starts
    assert not runtime.views_ready()


def test_every_ledger_gets_receipts_and_notice_metrics() -> None:
    runtime = _runtime("sms")
    listeners = runtime.listeners(Subjects(), lambda _recipient: {})
    assert [type(listener) for listener in listeners] == [ReceiptPublisher, NoticeMetrics]
    assert listeners[1] is runtime.notice_metrics  # one family per service


async def test_a_periodic_job_that_fails_runs_again() -> None:
    runtime = _runtime("sms")
    runs: list[int] = []
    again = asyncio.Event()

    async def job() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("the database is away")
        again.set()

    task = asyncio.create_task(runtime._repeat("job", 0.01, job))
    try:
        async with asyncio.timeout(5):
            await again.wait()
    finally:
        task.cancel()
    assert runs[:2] == [0, 1]
