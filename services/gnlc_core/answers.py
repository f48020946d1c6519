"""How every HTTP API of the services answers and refuses (one seam for all of them).

Every instant in every answer carries its offset (``Instant``: SQLite hands naive values
back, and every stored instant is UTC). Every refusal has one of two shapes: ``422`` with
``detail`` a list of ``{loc, msg, type}`` (``loc`` names the field: ``["body", "due_at"]``,
``["body", "line 5", "timezone"]``), every other error a string ``detail``. A 405 lists
every method of its path in ``Allow``; a body that cannot be decoded is a 422 like every
other invalid body.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from gnlc_core.errors import message_of


def _aware(value: datetime) -> datetime:
    """A naive value is UTC (SQLite); an aware one keeps its zone (local times)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


#: An instant as answered: always with its offset.
Instant = Annotated[datetime, AfterValidator(_aware)]

_DATE_TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")


def _date_time_text(value: object) -> object:
    """Only RFC 3339 text (what the documents promise), not a number of seconds."""
    if not isinstance(value, str) or not _DATE_TIME_TEXT.match(value):
        raise ValueError("must be a date and time with its offset, like 2027-01-17T09:00:00Z")
    return value


#: An instant asked for (a query parameter): RFC 3339 text with its offset.
AskedInstant = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]


class ErrorDetail(BaseModel):
    """Every error but 422: what went wrong, in words."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidRequest(BaseModel):
    """A 422: one entry per problem, ``loc`` naming the field."""

    detail: list[FieldError]


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Every 422 in one shape: ``{loc, msg, type}`` per problem, without echoing input."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in error.get("loc", ())],
            "msg": message_of(error),
            "type": str(error.get("type", "value_error")),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an ``HTTPException``, but: a 405 lists in ``Allow`` every
    method of the path (not only those of the first route that matched it), and a body
    that cannot even be decoded is a 422 like every other invalid body."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and "parsing the body" in str(exc.detail):
        return await validation_error_handler(
            request,
            RequestValidationError([{"loc": ("body",), "msg": exc.detail, "type": "json_invalid"}]),
        )
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed = sorted(
            method
            for route in request.app.router.routes
            if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE
            for method in route.methods or ()
        )
        exc = StarletteHTTPException(exc.status_code, exc.detail, {"Allow": ", ".join(allowed)})
    return await http_exception_handler(request, exc)


def answer_errors(app: FastAPI) -> None:
    """Install the two error shapes on ``app``."""
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
