"""Deliveries: a search of every notice (the status API's ``/v1/status/notices``) by city,
event (a deadline, an announcement or an event id), endpoint, channel and state; one
delivery with every attempt the services keep (a webhook's from the webhook API's log;
an email's state and attempt count from the status view: the email service keeps no
per-attempt log); a webhook's resend (the webhook API's) and an email's (the email
service's ``/v1/notices/resend``, which refuses what the contact's choices or a bounce
forbid: the refusal is shown on the page)."""

# No `from __future__ import annotations` here: FastAPI must see the routes' Depends,
# made in the router's closure, when the routes are defined.

import re
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from gnlc_console.backend import BackendError
from gnlc_console.searches import CHANNELS, STATES, delivery_search
from gnlc_console.sessions import Session
from gnlc_console.web import Console, editor, now, reader

Text = Annotated[str, Query(max_length=400)]
_EVENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
_SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"


async def city_zones(console: Console) -> dict[str, str]:
    """Each city's time zone (the scheduler's directory); none when it does not answer."""
    try:
        return {c["id"]: c["timezone"] for c in await console.scheduler.get("/v1/cities")}
    except BackendError:
        return {}


async def notice_history(
    console: Console, event_id: str, channel: str, recipient: str
) -> list[dict[str, Any]]:
    """Every state the status view kept of one notice, latest first (its latest 50)."""
    query = {"event_id": event_id, "channel": channel, "recipient": recipient}
    answer = await console.status.get("/v1/status/notices/history", **query)
    items: list[dict[str, Any]] = answer["items"]
    return items


def delivery_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/deliveries")

    @router.get("")
    async def search(
        request: Request,
        session: Annotated[Session, Depends(reader(console))],
        city: Text = "",
        event: Text = "",
        endpoint: Text = "",
        channel: Text = "",
        state: Text = "",
        offset: Text = "",
    ) -> Response:
        values = {
            "city": city,
            "event": event,
            "endpoint": endpoint,
            "channel": channel,
            "state": state,
            "offset": offset,
        }
        params, errors = delivery_search(values)
        asked = any(v for k, v in values.items() if k != "offset")
        page: dict[str, Any] = {"items": [], "next_offset": None}
        if asked and not errors:
            answer = await console.status.call("GET", "/v1/status/notices", params=params)
            if answer.status == 422:
                errors = {"": [e.get("msg", "refused") for e in answer.errors()]}
            elif answer.ok:
                page = answer.body
            else:
                errors = {"": [answer.errors()[0]["msg"]]}
        query = {k: v for k, v in values.items() if v and k != "offset"}
        return console.render(
            request,
            "deliveries.html",
            status_code=422 if errors else 200,
            session=session,
            values=values,
            errors=errors,
            asked=asked,
            rows=page["items"],
            next_offset=page["next_offset"],
            more=urlencode({**query, "offset": page["next_offset"] or 0}),
            zones=await city_zones(console) if page["items"] else {},
            channels=CHANNELS,
            states=STATES,
        )

    @router.get("/notice")
    async def notice(
        request: Request,
        session: Annotated[Session, Depends(reader(console))],
        event_id: Annotated[str, Query(pattern=_EVENT_ID)],
        channel: Annotated[str, Query(pattern=r"^(schedule|email|webhook)$")],
        recipient: Annotated[str, Query(min_length=1, max_length=320)],
    ) -> Response:
        row: dict[str, Any] | None = None
        history: list[dict[str, Any]] | None = None
        status_problem = None
        try:
            found = await console.status.get(
                "/v1/status/notices",
                event=event_id,
                channel=channel,
                recipient=recipient,
                since=(now() - timedelta(days=365)).isoformat(),  # the API's widest window
                limit=1,
            )
            row = found["items"][0] if found["items"] else None
            history = await notice_history(console, event_id, channel, recipient)
        except BackendError as exc:  # the rest of the page stands without it
            status_problem = f"The {exc.service} {exc.message}."
        attempts: list[dict[str, Any]] | None = None
        attempts_problem = None
        if channel == "webhook" and not re.match(_SLUG, recipient):
            attempts_problem = f"{recipient!r} is not an endpoint id."
        elif channel == "webhook":
            try:
                answer = await console.webhooks.call(
                    "GET",
                    f"/v1/endpoints/{recipient}/attempts",
                    params={"event_id": event_id, "limit": 100},
                )
                attempts = answer.body if answer.ok else []
                if answer.status == 404:
                    attempts_problem = f"The webhook service has no endpoint {recipient!r} now."
            except BackendError as exc:
                attempts_problem = f"The {exc.service} {exc.message}."
        zones = await city_zones(console)
        return console.render(
            request,
            "delivery.html",
            session=session,
            row=row,
            event_id=event_id,
            channel=channel,
            recipient=recipient,
            attempts=attempts,
            attempts_problem=attempts_problem,
            history=history,
            status_problem=status_problem,
            zone=zones.get((row or {}).get("city_id") or ""),
        )

    @router.post("/resend")
    async def resend(
        session: Annotated[Session, Depends(editor(console))],
        endpoint_id: Annotated[str, Form(pattern=_SLUG)],
        event_id: Annotated[str, Form(pattern=_EVENT_ID)],
    ) -> Response:
        answer = await console.webhooks.call(
            "POST", f"/v1/endpoints/{endpoint_id}/messages/{event_id}/resend"
        )
        if answer.ok:
            console.flash(
                session,
                "ok",
                f"Resend of {event_id} to {endpoint_id} queued: it goes out within seconds, "
                "whatever became of it before.",
            )
        else:
            console.flash(session, "error", f"Not resent: {answer.errors()[0]['msg']}")
        back = urlencode({"event_id": event_id, "channel": "webhook", "recipient": endpoint_id})
        return RedirectResponse(f"/deliveries/notice?{back}", status_code=303)

    @router.post("/resend-email")
    async def resend_email(
        session: Annotated[Session, Depends(editor(console))],
        event_id: Annotated[str, Form(pattern=_EVENT_ID)],
        recipient: Annotated[str, Form(min_length=3, max_length=320)],
    ) -> Response:
        answer = await console.email.call(
            "POST", "/v1/notices/resend", json={"event_id": event_id, "recipient": recipient}
        )
        if answer.ok:
            console.flash(
                session,
                "ok",
                f"Resend of {event_id} to {recipient} queued: it goes out within seconds, "
                "with its outcome in the state above.",
            )
        else:
            console.flash(session, "error", f"Not resent: {answer.errors()[0]['msg']}")
        back = urlencode({"event_id": event_id, "channel": "email", "recipient": recipient})
        return RedirectResponse(f"/deliveries/notice?{back}", status_code=303)

    return router
