"""Structured logs: one JSON object per line, secrets masked before anything is written.

Library loggers (FastStream, aiokafka, uvicorn) go through the same pipeline, so the
masking holds for every line the process writes.
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


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_VALUES.sub(MASK, value)
    if isinstance(value, Mapping):
        return {k: MASK if _SECRET_KEYS.search(str(k)) else _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: masks secret-looking keys and values anywhere in the event."""
    for key, value in list(event_dict.items()):
        event_dict[key] = MASK if _SECRET_KEYS.search(key) else _mask(value)
    return event_dict


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
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # "skipped: maximum number of running instances" is routine; job failures are errors
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, root.level))


def get_logger(name: str) -> Any:
    """A bound structlog logger (``log.info("event", key=value)``)."""
    return structlog.stdlib.get_logger(name)
