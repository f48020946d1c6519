from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from gnlc_webhook.outcome import Verdict, classify, parse_retry_after, transport_failure

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_status_codes() -> None:
    assert classify(200, None, NOW, cap=60).verdict is Verdict.DELIVERED
    assert classify(204, None, NOW, cap=60).verdict is Verdict.DELIVERED
    gone = classify(410, None, NOW, cap=60)
    assert gone.verdict is Verdict.GONE
    redirect = classify(301, None, NOW, cap=60)
    assert redirect.verdict is Verdict.RETRY
    assert "redirects are not followed" in (redirect.error or "")
    assert not classify(500, None, NOW, cap=60).slow_down
    for status in (429, 502, 503, 504):
        assert classify(status, None, NOW, cap=60).slow_down


def test_retry_after() -> None:
    assert parse_retry_after("120", NOW, cap=3600) == 120
    assert parse_retry_after("99999", NOW, cap=3600) == 3600
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, NOW, cap=3600) == 90
    earlier = format_datetime(NOW - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(earlier, NOW, cap=3600) == 0
    assert parse_retry_after("soon", NOW, cap=3600) is None
    assert parse_retry_after(None, NOW, cap=3600) is None
    assert classify(429, "7", NOW, cap=60).retry_after == 7


def test_transport_failures_retry_and_timeouts_slow_down() -> None:
    refused = transport_failure(ConnectionRefusedError("refused"))
    assert refused.verdict is Verdict.RETRY
    assert refused.error == "ConnectionRefusedError: refused"
    assert not refused.slow_down
    assert transport_failure(TimeoutError(), timed_out=True).slow_down
