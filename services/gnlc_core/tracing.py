"""Traces (OpenTelemetry): off unless the standard ``OTEL_*`` variables turn them on.

The shape of a trace (README, "Tracing"):

- it starts at an operator's API call (the SERVER span of the FastAPI instrumentation),
  whose context is stored with the outbox rows the call writes; or, for a row due later
  than ``CONTINUE_WITHIN`` after it was stored (a reminder, a scheduled announcement), at
  the scheduler's emit, a new trace *linked* to the API call (``emit_parent``);
- ``emit <type>`` (INTERNAL) and ``send <topic>`` (PRODUCER) in the scheduler; the
  PRODUCER span's context is written into the event: the CloudEvents distributed-tracing
  extension (``traceparent``, ``tracestate``; in structured mode, attributes of the JSON
  envelope), so it crosses Kafka with the event;
- each consumer makes one ``process <topic>`` (CONSUMER) span per event it handles, whose
  parent is the event's ``traceparent`` (a batch is many events, and so many spans);
- it ends at the SMTP transaction (``smtp send``, CLIENT) or the partner's HTTP POST
  (``POST``, CLIENT, with its status). A retry's Kafka record carries the context of the
  first attempt's CLIENT span (``FIRST_ATTEMPT_HEADER``); the retry's own CLIENT span has a
  span link to it.

Off (the default: no exporter configured, or ``OTEL_SDK_DISABLED=true``), nothing is set
up and every helper returns at its first line: no provider, no spans, no context written
into events, no instrumentation middleware.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from fastapi import FastAPI

    from gnlc_core.events import CloudEvent

__all__ = [
    "CONTINUE_WITHIN",
    "FIRST_ATTEMPT_HEADER",
    "Attempt",
    "Config",
    "ConfigError",
    "Exporter",
    "Processing",
    "attempt",
    "carrier",
    "client_span",
    "config_from",
    "configure",
    "context_from",
    "emit_parent",
    "emit_span",
    "enabled",
    "failed",
    "install",
    "instrument_app",
    "send_span",
    "stored_trace",
]

#: The Kafka header of a retry record: the ``traceparent`` of the first attempt's span.
FIRST_ATTEMPT_HEADER = "x-gnlc-first-attempt"
#: An outbox row due at most this long after the API call that stored it continues the
#: call's trace; a later one starts a trace of its own, linked to the call.
CONTINUE_WITHIN = timedelta(minutes=1)
#: ``GNLC_TRACES_FILE``: with ``OTEL_TRACES_EXPORTER=console``, spans go to this file (one
#: JSON object a line, appended) instead of standard output.
TRACES_FILE = "GNLC_TRACES_FILE"
#: The longest ``tracestate`` kept (W3C: 32 members of at most 256 characters; we keep less).
MAX_TRACESTATE = 512
#: Requests not traced: probes and scrapes.
EXCLUDED_URLS = "/health/.*,/metrics"

_PROPAGATOR = TraceContextTextMapPropagator()
_E = TypeVar("_E", bound="CloudEvent")

# -- configuration (pure) ---------------------------------------------------------------


class Exporter(StrEnum):
    NONE = "none"
    OTLP = "otlp"  # OTLP over HTTP with protobuf, to OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT
    CONSOLE = "console"  # JSON, to standard output or GNLC_TRACES_FILE


class ConfigError(ValueError):
    """The ``OTEL_*`` variables ask for something this service cannot do (it refuses to
    start, naming the variable)."""


@dataclass(frozen=True)
class Config:
    exporter: Exporter
    file: Path | None = None


def _first(environ: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return ""


def config_from(environ: Mapping[str, str]) -> Config:
    """What the standard variables ask for. Unlike the SDK's own default (``otlp``), no
    ``OTEL_TRACES_EXPORTER`` means *off*, unless an OTLP endpoint is given: a service nobody
    configured for tracing never sends spans anywhere."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Config(Exporter.NONE)
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [n for n in names if n]
    if not names:
        endpoint = _first(
            environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = [Exporter.OTLP if endpoint else Exporter.NONE]
    if Exporter.NONE in names:
        return Config(Exporter.NONE)
    known = ", ".join(e.value for e in Exporter)
    if len(names) > 1:
        raise ConfigError(f"OTEL_TRACES_EXPORTER: one exporter at a time ({known}), not {names}")
    try:
        exporter = Exporter(names[0])
    except ValueError:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={names[0]!r} is not supported: use one of {known}"
        ) from None
    if exporter is Exporter.OTLP:
        protocol = _first(
            environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"
        )
        if protocol not in ("", "http/protobuf"):
            raise ConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: the OTLP "
                "exporter speaks http/protobuf (port 4318 of a collector)"
            )
    path = environ.get(TRACES_FILE, "").strip()
    return Config(exporter, Path(path) if path and exporter is Exporter.CONSOLE else None)


# -- the process's provider ---------------------------------------------------------------

_provider: TracerProvider | None = None
_tracer: Tracer | None = None


def enabled() -> bool:
    return _tracer is not None


def install(provider: TracerProvider | None) -> None:
    """Use ``provider`` for this module's spans (``None``: tracing off). ``configure`` does
    it for a service; tests install one with an in-memory exporter."""
    global _provider, _tracer
    _provider = provider
    _tracer = provider.get_tracer("gnlc_notify") if provider is not None else None


def resource_for(service: str) -> Resource:
    """``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME``; ``gnlc-<service>`` when
    neither names the service."""
    resource = Resource.create({"service.namespace": "gnlc-notify"})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: f"gnlc-{service}"}))
    return resource


def _json_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def exporter_for(config: Config) -> SpanExporter | None:
    if config.exporter is Exporter.OTLP:
        # its import costs (protobuf, requests): only when asked for
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # endpoint, headers, timeout... from OTEL_EXPORTER_OTLP_*
    if config.exporter is Exporter.CONSOLE:
        if config.file is not None:
            return _FileSpanExporter(config.file.open("a", encoding="utf-8"))
        return ConsoleSpanExporter(out=sys.stdout, formatter=_json_line)
    return None


class _FileSpanExporter(ConsoleSpanExporter):
    """The console exporter's JSON lines, to a file of its own (closed at shutdown)."""

    def __init__(self, out: IO[str]) -> None:
        super().__init__(out=out, formatter=_json_line)
        self._file = out

    def shutdown(self) -> None:
        self._file.close()


def configure(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Set up this process's tracer provider from the ``OTEL_*`` variables (once per
    process, before the app is built); returns whether tracing is on. Raises
    ``ConfigError`` for a setting it cannot honour."""
    config = config_from(os.environ if environ is None else environ)
    exporter = exporter_for(config)
    if exporter is None:
        install(None)
        return False
    provider = TracerProvider(resource=resource_for(service))
    # OTEL_BSP_* (delay, queue and batch sizes) apply
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    trace.set_tracer_provider(provider)  # for libraries that trace on their own
    return True


def instrument_app(app: FastAPI) -> None:
    """The SERVER span of each API request (not of probes and scrapes); nothing when off."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
    )


# -- carrying a context -------------------------------------------------------------------


def carrier(context: Context | None = None) -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the span current in ``context`` (the current
    context by default); empty when there is none."""
    out: dict[str, str] = {}
    _PROPAGATOR.inject(out, context=context)
    return out


def context_from(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The context a ``traceparent`` names (as a remote parent); ``None`` for none or an
    invalid one: a bad trace header never stops a notice."""
    if not traceparent:
        return None
    headers = {"traceparent": traceparent}
    if tracestate:
        headers["tracestate"] = tracestate[:MAX_TRACESTATE]
    context = _PROPAGATOR.extract(headers, context=Context())
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _span_context(traceparent: str | None) -> SpanContext | None:
    context = context_from(traceparent)
    return trace.get_current_span(context).get_span_context() if context is not None else None


def _traceparent_of(span: Span) -> str | None:
    return carrier(trace.set_span_in_context(span, Context())).get("traceparent")


# -- the scheduler: API call -> outbox row -> emit -> send ---------------------------------


def stored_trace(now: datetime) -> dict[str, str] | None:
    """What an outbox row keeps of the API call that wrote it: the current span's context
    and when; ``None`` when tracing is off or no span is current."""
    if _tracer is None:
        return None
    headers = carrier()
    if not headers:
        return None
    return {**headers, "at": now.isoformat()}


def emit_parent(stored: Mapping[str, Any] | None, fire_at: datetime) -> tuple[Context, list[Link]]:
    """The parent of a row's emit span, and its links. A row due within ``CONTINUE_WITHIN``
    of its API call (an announcement published now) continues the call's trace; one due
    later (a reminder, days or weeks ahead) starts a new trace linked to the call: a trace
    left open that long would never be shown whole, and one deadline's call would hold
    every reminder of every city. No stored context: a new trace, no link."""
    if not stored:
        return Context(), []
    context = context_from(stored.get("traceparent"), stored.get("tracestate"))
    if context is None:
        return Context(), []
    try:
        at = datetime.fromisoformat(str(stored.get("at")))
        late = fire_at - at
    except (TypeError, ValueError):
        late = CONTINUE_WITHIN + timedelta(seconds=1)
    if late <= CONTINUE_WITHIN:
        return context, []
    return Context(), [Link(trace.get_current_span(context).get_span_context())]


@contextmanager
def emit_span(
    event_type: str, event_id: str, stored: Mapping[str, Any] | None, fire_at: datetime
) -> Iterator[None]:
    """``emit <type>`` (INTERNAL) around publishing an outbox row, current while it lasts
    (the ``send`` span is its child)."""
    if _tracer is None:
        yield
        return
    parent, links = emit_parent(stored, fire_at)
    with _tracer.start_as_current_span(
        f"emit {event_type}",
        context=parent,
        kind=SpanKind.INTERNAL,
        links=links,
        attributes={"cloudevents.event_id": event_id, "cloudevents.event_type": event_type},
    ):
        yield


def _event_attributes(event: CloudEvent) -> dict[str, str]:
    attributes = {
        "messaging.message.id": event.id,
        "messaging.kafka.message.key": event.partitionkey,
        "cloudevents.event_id": event.id,
        "cloudevents.event_type": event.type,
        "cloudevents.event_source": event.source,
        "cloudevents.event_spec_version": event.specversion,
    }
    if event.subject is not None:
        attributes["cloudevents.event_subject"] = event.subject
    return attributes


@contextmanager
def send_span(topic: str, event: _E) -> Iterator[_E]:
    """``send <topic>`` (PRODUCER), a child of the current span, around publishing
    ``event``; yields the event to publish: ``event`` with this span's context in its
    ``traceparent``/``tracestate`` (``event`` itself when tracing is off)."""
    if _tracer is None:
        yield event
        return
    with _tracer.start_as_current_span(
        f"send {topic}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
            **_event_attributes(event),
        },
    ):
        headers = carrier()
        yield event.model_copy(
            update={
                "traceparent": headers.get("traceparent"),
                "tracestate": headers.get("tracestate"),
            }
        )


# -- consumers ---------------------------------------------------------------------------


class Processing:
    """The CONSUMER spans of a batch: ``process <topic>``, one per event handled, each the
    child of its event's ``traceparent`` (a new trace for an event without one). Ends them
    all on leaving (with the error, if the batch failed)."""

    __slots__ = ("_group", "_spans")

    def __init__(self, group: str) -> None:
        self._group = group
        self._spans: list[Span] = []

    def start(
        self,
        event: CloudEvent,
        *,
        topic: str,
        partition: int | None = None,
        offset: int | None = None,
        attempt: int | None = None,
    ) -> Context | None:
        """Start the event's span; returns the context its CLIENT spans are children of
        (``None`` when tracing is off)."""
        if _tracer is None:
            return None
        parent = context_from(event.traceparent, event.tracestate) or Context()
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": self._group,
            **_event_attributes(event),
        }
        if partition is not None:
            attributes["messaging.destination.partition.id"] = str(partition)
        if offset is not None:
            attributes["messaging.kafka.offset"] = offset
        if attempt is not None:
            attributes["gnlc.attempt"] = attempt
        span = _tracer.start_span(
            f"process {topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        )
        self._spans.append(span)
        return trace.set_span_in_context(span, parent)

    def end(self, error: BaseException | None = None) -> None:
        spans, self._spans = self._spans, []
        for span in spans:
            if error is not None:
                span.record_exception(error)
                span.set_status(StatusCode.ERROR, type(error).__name__)
            span.end()

    def __enter__(self) -> Processing:
        return self

    def __exit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        self.end(error)


@dataclass
class Attempt:
    """Where one delivery attempt's CLIENT span goes: its parent, and the first attempt's
    span (``traceparent``) to link to. Once the span starts, ``first`` is set if it was not
    (this is the first attempt): the retry record carries it on."""

    parent: Context
    first: str | None = None
    #: What the consumer knows of it (event, recipient, attempt number).
    attributes: Mapping[str, str | int] = field(default_factory=dict)


def attempt(
    parent: Context | None,
    first: str | None = None,
    attributes: Mapping[str, str | int] | None = None,
) -> Attempt | None:
    """An ``Attempt`` under ``parent`` (``None`` when tracing is off)."""
    if _tracer is None:
        return None
    return Attempt(parent if parent is not None else Context(), first, attributes or {})


class _Untraced:
    """``client_span`` when there is nothing to trace: free of cost."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


_UNTRACED = _Untraced()


def client_span(
    name: str, attempt: Attempt | None, attributes: Mapping[str, str | int]
) -> AbstractContextManager[Span | None]:
    """A context manager: the attempt's CLIENT span (yielded, and current), linked to the
    first attempt's; ``None`` when ``attempt`` is (tracing off)."""
    if attempt is None or _tracer is None:
        return _UNTRACED
    return _client_span(_tracer, name, attempt, attributes)


@contextmanager
def _client_span(
    tracer: Tracer, name: str, attempt: Attempt, attributes: Mapping[str, str | int]
) -> Iterator[Span]:
    first = _span_context(attempt.first)
    links: Sequence[Link] = [Link(first, {"gnlc.link": "first attempt"})] if first else []
    with tracer.start_as_current_span(
        name,
        context=attempt.parent,
        kind=SpanKind.CLIENT,
        links=links,
        attributes={**attempt.attributes, **attributes},
    ) as span:
        if attempt.first is None:
            attempt.first = _traceparent_of(span)
        yield span


def failed(span: Span | None, error_type: str, description: str | None = None) -> None:
    """Mark a CLIENT span failed: ``error.type`` (an HTTP status, an SMTP reply code, an
    exception's class) and the span's status."""
    if span is None:
        return
    span.set_attribute("error.type", error_type)
    span.set_status(StatusCode.ERROR, description)
