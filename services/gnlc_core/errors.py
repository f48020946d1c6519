"""Validation errors as a reader wants them (one wording for APIs, files and logs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where it is raised: the CLI and the file loaders need no web
    from fastapi import HTTPException  # framework (about 0.2 s of every CLI command's start)

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


def invalid_query(name: str, message: str) -> HTTPException:
    """A 422 about query parameter ``name`` in FastAPI's own shape (``HTTPValidationError``,
    what the OpenAPI documents say a 422 is), so clients read it like any other."""
    from fastapi import HTTPException, status

    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["query", name], "msg": message, "type": "value_error"}],
    )
