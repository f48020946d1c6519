"""One announcement, one trace: the operator's API call, the scheduler's emit, both Kafka
hops, the SMTP transaction and the partner's POST, across three service processes on the
real broker, a real SMTP server and a real HTTP receiver. Each process writes its spans to
a file of its own (``OTEL_TRACES_EXPORTER=console`` with ``GNLC_TRACES_FILE``); the test
reads them together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import System
from tests.support import eventually, start_all

pytestmark = pytest.mark.integration

SERVICES = ("scheduler", "email", "webhook")


def traced(system: System, name: str) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "console",
        "GNLC_TRACES_FILE": str(spans_file(system.tmp, name)),
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # milliseconds: spans out soon after they end
    }


def spans_file(tmp: Path, name: str) -> Path:
    return tmp / f"{name}.spans.jsonl"


def read_spans(tmp: Path) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = []
    for name in SERVICES:
        path = spans_file(tmp, name)
        if path.exists():
            spans.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return spans


def one(spans: list[dict[str, Any]], name: str, kind: str) -> dict[str, Any]:
    found = [s for s in spans if s["name"] == name and s["kind"] == f"SpanKind.{kind}"]
    assert len(found) == 1, (name, kind, [(s["name"], s["kind"]) for s in spans])
    return found[0]


def span_id(span: dict[str, Any]) -> str:
    return str(span["context"]["span_id"])


def trace_id(span: dict[str, Any]) -> str:
    return str(span["context"]["trace_id"])


def service_of(span: dict[str, Any]) -> str:
    return str(span["resource"]["attributes"]["service.name"])


def test_an_announcement_is_one_trace_from_the_api_call_to_smtp_and_the_partner(
    system: System,
) -> None:
    scheduler, _, _ = start_all(
        *(
            system.service(name, **traced(system, name))
            for name in ("scheduler", "email", "webhook")
        )
    )
    response = system.api(
        "POST",
        "/v1/announcements",
        scheduler,
        json={
            "id": "traced-workshop",
            "category": "workshop",
            "title": {"en": "Capacity-building workshop"},
            "body": {"en": "Register by Friday."},
            "audience": {"cities": ["kathmandu"]},  # one contact
        },
    )
    assert response.status_code == 202, response.text
    assert system.mailbox.wait_for(1, timeout=60), [s.tail() for s in system.services]
    assert system.receiver.inbox.wait_for_unique(1, timeout=30)
    prefix = system.prefix
    wanted = {
        ("POST /v1/announcements", "SpanKind.SERVER"),
        ("emit announcement.published", "SpanKind.INTERNAL"),
        (f"send {prefix}announcement.published", "SpanKind.PRODUCER"),
        (f"process {prefix}announcement.published", "SpanKind.CONSUMER"),
        ("smtp send", "SpanKind.CLIENT"),
        ("POST", "SpanKind.CLIENT"),
    }

    def all_there() -> list[dict[str, Any]]:
        spans = read_spans(system.tmp)
        have = {(s["name"], s["kind"]) for s in spans}
        # the announcement's topic is consumed by two groups: two CONSUMER spans
        consumers = sum(s["name"] == f"process {prefix}announcement.published" for s in spans)
        return spans if wanted <= have and consumers == 2 else []

    spans = eventually(all_there, timeout=30, what="every span of the announcement's trace")

    server = one(spans, "POST /v1/announcements", "SERVER")
    emit = one(spans, "emit announcement.published", "INTERNAL")
    send = one(spans, f"send {prefix}announcement.published", "PRODUCER")
    consumers = [s for s in spans if s["name"] == f"process {prefix}announcement.published"]
    smtp = one(spans, "smtp send", "CLIENT")
    post = one(spans, "POST", "CLIENT")
    by_service = {service_of(s): s for s in consumers}
    assert set(by_service) == {"gnlc-email", "gnlc-webhook"}

    # one trace, from the API call down to both ends
    the_trace = trace_id(server)
    for span in (emit, send, *consumers, smtp, post):
        assert trace_id(span) == the_trace, span["name"]
    assert server["parent_id"] is None
    assert emit["parent_id"] == span_id(server)
    assert send["parent_id"] == span_id(emit)
    assert all(c["parent_id"] == span_id(send) for c in consumers)  # across Kafka
    assert smtp["parent_id"] == span_id(by_service["gnlc-email"])
    assert post["parent_id"] == span_id(by_service["gnlc-webhook"])
    assert [service_of(s) for s in (server, emit, send, smtp, post)] == [
        "gnlc-scheduler",
        "gnlc-scheduler",
        "gnlc-scheduler",
        "gnlc-email",
        "gnlc-webhook",
    ]
    assert post["attributes"]["http.response.status_code"] == 204
    assert smtp["status"]["status_code"] == "UNSET"

    # the partner sees the event's context (CloudEvents distributed tracing) and the
    # POST's own (the traceparent header)
    [delivery] = system.receiver.inbox.unique.values()
    assert delivery.event["traceparent"].split("-")[1:3] == [
        the_trace.removeprefix("0x"),
        span_id(send).removeprefix("0x"),
    ]
    assert delivery.headers["traceparent"].split("-")[2] == span_id(post).removeprefix("0x")
