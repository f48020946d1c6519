"""The dashboard: what goes out in the next 24 hours and 7 days (the scheduler's
schedule), deliveries of the last 24 hours by channel and state (the status API's summary,
as a chart and a table), and what needs attention: events the scheduler could not publish
(parked), dead letters not redriven, and partner endpoints that are not active."""

# No `from __future__ import annotations` here: FastAPI must see the routes' Depends,
# made in the router's closure, when the routes are defined.

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gnlc_console.backend import BackendError, NotFound
from gnlc_console.charts import LABEL_WIDTH, ROW_HEIGHT, WIDTH, chart
from gnlc_console.plans import outgoing
from gnlc_console.sessions import Session
from gnlc_console.web import Console, now, reader

#: The schedule's rows read for the dashboard (the API's largest page).
SCHEDULE_LIMIT = 10000


async def _from_status(
    console: Console,
) -> tuple[dict[str, dict[str, int]], dict[str, int] | None, str | None]:
    """The last 24 hours' notices by channel and state, and the dead letters not redriven
    per channel (the status API), or why not (the rest of the page stands)."""
    try:
        summary = await console.status.get("/v1/status/summary")
        dead = await console.status.get("/v1/dead-letters/counts")
    except (BackendError, NotFound) as exc:
        return {}, None, str(exc)
    return summary["counts"], dead, None


def dashboard_router(console: Console) -> APIRouter:
    router = APIRouter()

    @router.get("/")
    async def dashboard(
        request: Request, session: Annotated[Session, Depends(reader(console))]
    ) -> Response:
        schedule = await console.scheduler.get("/v1/schedule", limit=SCHEDULE_LIMIT)
        parked = await console.scheduler.get("/v1/outbox", state="parked", limit=100)
        moment = now()
        endpoints: list[dict[str, Any]] | None
        webhook_problem = None
        try:
            endpoints = [
                e for e in await console.webhooks.get("/v1/endpoints") if e["state"] != "active"
            ]
        except BackendError as exc:  # the page still shows what the scheduler says
            endpoints, webhook_problem = None, f"{exc.service} {exc.message}"
        counts, dead, status_problem = await _from_status(console)
        return console.render(
            request,
            "dashboard.html",
            geometry={"label": LABEL_WIDTH, "row": ROW_HEIGHT, "width": WIDTH},
            chart=chart(counts),
            dead_letters=dead,
            status_problem=status_problem,
            session=session,
            day=outgoing(schedule, moment, timedelta(days=1)),
            week=outgoing(schedule, moment, timedelta(days=7)),
            truncated=len(schedule) >= SCHEDULE_LIMIT,
            next_rows=schedule[:10],
            parked=parked,
            endpoints=endpoints,
            webhook_problem=webhook_problem,
        )

    return router
