"""Traces: the ``OTEL_*`` settings, off by default, the context carried by the CloudEvents
envelope from the API call to the client spans, and where an emit's trace starts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from gnlc_core import tracing
from gnlc_core.events import encode_event, parse_event
from gnlc_core.service import start_tracing
from gnlc_core.tracing import Config, ConfigError, Exporter
from tests.tracing_support import named, parent_id, recording, span_id, trace_id, traceparent
from tests.unit.scheduler_api import operator_api

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "schemas/examples/announcement.published/valid/award-for-all.json"
)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def example() -> Any:
    return parse_event(EXAMPLE.read_bytes())


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, Config(Exporter.NONE)),  # off by default, unlike the SDK's own default
        ({"OTEL_TRACES_EXPORTER": "none"}, Config(Exporter.NONE)),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, Config(Exporter.OTLP)),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, Config(Exporter.OTLP)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, Config(Exporter.OTLP)),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            Config(Exporter.OTLP),
        ),
        ({"OTEL_TRACES_EXPORTER": " Console "}, Config(Exporter.CONSOLE)),
        (
            {"OTEL_TRACES_EXPORTER": "console", "GNLC_TRACES_FILE": "spans/trace.jsonl"},
            Config(Exporter.CONSOLE, Path("spans/trace.jsonl")),
        ),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, Config(Exporter.NONE)),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, Config(Exporter.OTLP)),
    ],
)
def test_config_from_the_standard_variables(environ: dict[str, str], expected: Config) -> None:
    assert tracing.config_from(environ) == expected


@pytest.mark.parametrize(
    ("environ", "named_variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_settings_it_cannot_honour_are_refused_naming_the_variable(
    environ: dict[str, str], named_variable: str
) -> None:
    with pytest.raises(ConfigError, match=named_variable):
        tracing.config_from(environ)


def test_off_by_default_nothing_is_set_up_or_traced() -> None:
    assert tracing.configure("unit", {}) is False
    assert not tracing.enabled()
    event = example()
    with tracing.send_span("topic", event) as sent:
        assert sent is event  # no context written into the event
    with tracing.Processing("group") as spans:
        assert spans.start(event, topic="topic") is None
    assert tracing.attempt(None) is None
    with tracing.client_span("POST", None, {}) as span:
        assert span is None
    with tracing.emit_span("announcement.published", event.id, None, NOW):
        assert tracing.carrier() == {}
    assert tracing.stored_trace(NOW) is None
    app = FastAPI()
    tracing.instrument_app(app)
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


def test_the_exporters() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    assert isinstance(tracing.exporter_for(Config(Exporter.OTLP)), OTLPSpanExporter)
    assert tracing.exporter_for(Config(Exporter.NONE)) is None


def test_console_to_a_file_writes_one_json_span_a_line(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = tracing.exporter_for(Config(Exporter.CONSOLE, path))
    assert exporter is not None
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("unit").start_as_current_span("one"):
        pass
    with provider.get_tracer("unit").start_as_current_span("two"):
        pass
    provider.shutdown()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["one", "two"]


def test_the_service_name_defaults_to_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    resource = tracing.resource_for("email")
    assert resource.attributes["service.name"] == "gnlc-email"
    assert resource.attributes["deployment.environment"] == "test"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "mail-eu")
    assert tracing.resource_for("email").attributes["service.name"] == "mail-eu"


def test_the_context_crosses_kafka_in_the_envelope() -> None:
    with recording() as exporter:
        event = example()
        with (
            tracing.emit_span(event.type, event.id, None, NOW),
            tracing.send_span("t.announcement.published", event) as sent,
        ):
            value = encode_event(sent)  # what goes on Kafka
        received = parse_event(value)
        with tracing.Processing("t.webhook") as spans:
            parent = spans.start(received, topic="t.announcement.published", offset=7)
            with tracing.client_span("POST", tracing.attempt(parent), {"gnlc.attempt": 1}):
                pass
    spans_ = exporter.get_finished_spans()
    [emit] = named(spans_, "emit announcement.published")
    [send] = named(spans_, "send t.announcement.published")
    [process] = named(spans_, "process t.announcement.published")
    [post] = named(spans_, "POST")
    assert json.loads(value)["traceparent"] == traceparent(send)
    assert (emit.kind, send.kind, process.kind, post.kind) == (
        SpanKind.INTERNAL,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
        SpanKind.CLIENT,
    )
    assert emit.parent is None  # no API call behind it: a trace of its own
    assert parent_id(send) == span_id(emit)
    assert parent_id(process) == span_id(send)
    assert parent_id(post) == span_id(process)
    assert len({trace_id(s) for s in spans_}) == 1
    assert process.attributes is not None
    assert process.attributes["messaging.destination.name"] == "t.announcement.published"
    assert process.attributes["messaging.kafka.offset"] == 7
    assert process.attributes["cloudevents.event_id"] == event.id


@pytest.mark.parametrize("bad", ["garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01", ""])
def test_an_unreadable_traceparent_starts_a_new_trace_and_stops_nothing(bad: str) -> None:
    event = example().model_copy(update={"traceparent": bad})
    with recording() as exporter, tracing.Processing("g") as spans:
        assert spans.start(event, topic="t") is not None
    [process] = exporter.get_finished_spans()
    assert process.parent is None


@pytest.mark.parametrize(
    ("stored_at", "fire_at", "continues"),
    [
        (NOW, NOW, True),  # published now
        (NOW, NOW + tracing.CONTINUE_WITHIN, True),
        (NOW, NOW + tracing.CONTINUE_WITHIN + timedelta(seconds=1), False),
        (NOW, NOW + timedelta(days=30), False),  # a reminder a month ahead
        (NOW, NOW - timedelta(hours=1), True),  # already due when stored
    ],
)
def test_an_emit_continues_the_api_call_or_links_to_it(
    stored_at: datetime, fire_at: datetime, continues: bool
) -> None:
    stored = {"traceparent": TRACEPARENT, "at": stored_at.isoformat()}
    parent, links = tracing.emit_parent(stored, fire_at)
    current = trace.get_current_span(parent).get_span_context()
    if continues:
        assert f"{current.span_id:016x}" == "00f067aa0ba902b7"
        assert links == []
    else:
        assert not current.is_valid  # a root
        [link] = links
        assert f"{link.context.span_id:016x}" == "00f067aa0ba902b7"


@pytest.mark.parametrize(
    "stored",
    [None, {}, {"traceparent": "garbage", "at": NOW.isoformat()}],
)
def test_an_emit_without_a_stored_call_is_a_new_trace(stored: dict[str, str] | None) -> None:
    parent, links = tracing.emit_parent(stored, NOW)
    assert not trace.get_current_span(parent).get_span_context().is_valid
    assert links == []


def test_a_stored_call_without_its_time_is_linked_not_continued() -> None:
    _parent, links = tracing.emit_parent({"traceparent": TRACEPARENT}, NOW)
    assert len(links) == 1


async def test_an_announcement_api_call_is_the_root_of_its_emit(tmp_path: Path) -> None:
    """The operator's POST is a SERVER span; the outbox row keeps its context, and the
    emit of the row (due now) continues that trace."""
    with recording() as exporter:
        async with operator_api(tmp_path) as api:
            tracing.instrument_app(api.app)
            answer = await api.client.post(
                "/v1/announcements",
                json={
                    "id": "education-day",
                    "category": "event",
                    "title": {"en": "International Day of Education"},
                    "body": {"en": "Join us on 24 January."},
                    "audience": {"cities": ["kathmandu"]},
                },
            )
            assert answer.status_code == 202, answer.text
            await api.service.dispatcher.wake()
            assert api.service.dispatcher.emitted == 1
    spans = exporter.get_finished_spans()
    [server] = [s for s in spans if s.kind is SpanKind.SERVER]
    assert server.name == "POST /v1/announcements"
    [emit] = named(spans, "emit announcement.published")
    [send] = named(spans, "send test.announcement.published")
    assert parent_id(emit) == span_id(server)
    assert parent_id(send) == span_id(emit)
    assert trace_id(send) == trace_id(server)
    assert send.status.status_code is StatusCode.UNSET


def test_a_service_refuses_to_start_with_tracing_it_cannot_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    with pytest.raises(SystemExit, match="OTEL_TRACES_EXPORTER='jaeger' is not supported"):
        start_tracing("email")
    assert not tracing.enabled()
