"""Structured logs: one JSON object per line, secrets masked before anything is written.

Library loggers (FastStream, aiokafka, uvicorn) go through the same pipeline, so the
masking holds for every line the process writes; FastStream's own logger, which writes
coloured text to stdout, is brought into it too. What the Kafka client reports about the
ordinary course of a start (a coordinator not elected yet on a new cluster, a partition
leader not known yet for a new topic, a group rebalancing while its members join) is
lowered to DEBUG: the client retries on its own, and an operator should not read ERROR
lines on every healthy start. The same messages at any other time are still rare enough
to be worth a look at DEBUG.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|api[_-]?key|signature", re.I)
_SECRET_VALUES = re.compile(r"whsec_[A-Za-z0-9+/=]+|Bearer\s+\S+", re.I)
MASK = "[redacted]"

#: (logger name prefix, message pattern) of what a healthy start reports: lowered to DEBUG.
ROUTINE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("aiokafka", re.compile(r"GroupCoordinatorNotAvailable|NotLeaderForPartition")),
    ("aiokafka", re.compile(r"Heartbeat failed for group .* because it is rebalancing")),
    ("aiokafka", re.compile(r"Marking the coordinator dead")),
    ("faststream", re.compile(r"Auto create topics is disabled")),
    ("faststream", re.compile(r"callback for Task-\d+ is being executed")),
)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_VALUES.sub(MASK, value)
    if isinstance(value, Mapping):
        return {k: MASK if _SECRET_KEYS.search(str(k)) else _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, tuple):  # a named tuple (a notice, a log row) keeps its fields
        masked = [_mask(v) for v in value]
        make = getattr(value, "_make", None)
        return make(masked) if make is not None else tuple(masked)
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: masks secret-looking keys and values anywhere in the event."""
    for key, value in list(event_dict.items()):
        event_dict[key] = MASK if _SECRET_KEYS.search(key) else _mask(value)
    return event_dict


class RoutineToDebug(logging.Filter):
    """Lowers the ``ROUTINE`` messages of library loggers to DEBUG, and drops them unless
    DEBUG is on (a logger's level is checked before its filters run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return True
        message = record.getMessage()
        for prefix, pattern in ROUTINE:
            if record.name.startswith(prefix) and pattern.search(message):
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
                return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def configure(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and the standard library through one masked renderer on stderr."""
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RoutineToDebug())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=service)
    # FastStream's loggers write coloured text and do not propagate: into ours. (Imported
    # here so that its loggers exist before they are rerouted, not re-made after.)
    import faststream  # noqa: F401

    for name in ("faststream", "faststream.access", "faststream.access.kafka"):
        library = logging.getLogger(name)
        library.handlers[:] = []
        library.propagate = True
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # "skipped: maximum number of running instances" is routine; job failures are errors
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, root.level))


def get_logger(name: str) -> Any:
    """A bound structlog logger (``log.info("event", key=value)``)."""
    return structlog.stdlib.get_logger(name)
