"""Validation errors as a reader wants them (one wording for APIs, files and logs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def message_of(error: Mapping[str, Any]) -> str:
    """A validation error's message as a reader wants it: without pydantic's "Value error, "
    prefix, and with the reason a JSON decoder gave (``ctx.error``) when there is one."""
    text = str(error.get("msg", ""))
    for prefix in _PYDANTIC_PREFIXES:
        text = text.removeprefix(prefix)
    context = error.get("ctx")
    if isinstance(context, Mapping) and isinstance(context.get("error"), str | ValueError):
        reason = str(context["error"])
        if reason and reason not in text:
            text = f"{text}: {reason}"
    return text
