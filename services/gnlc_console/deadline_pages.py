"""Deadlines: list, create, edit, the plan per city in local time, submissions, cancel."""

# No `from __future__ import annotations` here: FastAPI must see the routes' Depends,
# made in the router's closure, when the routes are defined.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from gnlc_console.backend import NotFound
from gnlc_console.editing import all_errors, form_values, refusal_errors, saved_notes
from gnlc_console.forms import (
    Errors,
    Values,
    audience_values,
    deadline_payload,
    local_value,
    text_rows,
)
from gnlc_console.plans import city_plans, deadline_model
from gnlc_console.sessions import Session
from gnlc_console.times import viewer_zone
from gnlc_console.web import Console, editor, now, reader
from gnlc_core.directory import City, Directory
from gnlc_core.events import Audience
from gnlc_scheduler.deadlines import Deadline

DEFAULT_PLAN = "-30d -7d -1d 0d +3d"
SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"


def deadline_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/deadlines")
    viewing = Depends(reader(console))
    changing = Depends(editor(console))
    api = console.scheduler

    async def directory() -> Directory:
        return Directory(tuple(City.model_validate(c) for c in await api.get("/v1/cities")))

    async def editor_page(
        request: Request,
        session: Session,
        values: Values,
        errors: Errors | None = None,
        *,
        editing: str | None = None,
        status: int = 200,
    ) -> Response:
        regions = sorted({city.region for city in await directory()})
        return console.render(
            request,
            "deadline_form.html",
            status_code=status,
            session=session,
            values=values,
            errors=errors or {},
            editing=editing,
            regions=regions,
        )

    @router.get("")
    async def list_deadlines(request: Request, session: Annotated[Session, viewing]) -> Response:
        deadlines = await api.get("/v1/deadlines")
        deadlines.sort(key=lambda d: d["due_at"], reverse=True)
        return console.render(request, "deadlines.html", session=session, deadlines=deadlines)

    @router.get("/new")
    async def new(request: Request, session: Annotated[Session, changing]) -> Response:
        values: Values = {
            "rows": 3,
            "lang_0": "en",
            "reminders": DEFAULT_PLAN,
            "delivery_hour": "9",
            "zone": console_zone(request),
            "audience_kind": "all",
        }
        return await editor_page(request, session, values)

    @router.post("")
    async def create(request: Request, session: Annotated[Session, changing]) -> Response:
        return await save(request, session, await form_values(request), None)

    async def save(
        request: Request, session: Session, values: Values, editing: str | None
    ) -> Response:
        if editing:
            values["id"] = editing
        payload, errors = deadline_payload(values)
        if errors:
            errors = all_errors(Deadline, payload, errors, values)
            return await editor_page(request, session, values, errors, editing=editing, status=422)
        if editing:
            answer = await api.call("PUT", f"/v1/deadlines/{editing}", json=payload)
        else:
            answer = await api.call("POST", "/v1/deadlines", json=payload)
        if not answer.ok:
            errors = refusal_errors(answer, values)
            return await editor_page(request, session, values, errors, editing=editing, status=422)
        body: dict[str, Any] = answer.body
        counts = body["counts"]
        console.flash(
            session,
            "ok",
            f"Deadline {payload['id']} saved: {counts['scheduled']} reminder(s) scheduled, "
            f"{sum(counts['not_scheduled'].values())} not scheduled.",
            saved_notes(body),
        )
        return RedirectResponse(f"/deadlines/{payload['id']}", status_code=303)

    @router.get("/{deadline_id}")
    async def show(
        request: Request, deadline_id: str, session: Annotated[Session, viewing]
    ) -> Response:
        stored = await api.get(f"/v1/deadlines/{deadline_id}")
        submissions = await api.get(f"/v1/deadlines/{deadline_id}/submissions")
        pending = await api.get("/v1/schedule", deadline_id=deadline_id, limit=10000)
        audience = (await directory()).resolve(Audience.model_validate(stored["audience"]))
        submitted = {s["city_id"]: s["submitted_at"] for s in submissions}
        plans = city_plans(deadline_model(stored), audience, pending, submitted, now())
        return console.render(
            request,
            "deadline.html",
            session=session,
            deadline=stored,
            plans=plans,
            not_submitted=[c for c in audience if c.id not in submitted],
            submissions=submissions,
            fragment=None,
        )

    @router.get("/{deadline_id}/edit")
    async def edit(
        request: Request, deadline_id: str, session: Annotated[Session, changing]
    ) -> Response:
        stored = await api.get(f"/v1/deadlines/{deadline_id}")
        zone = console_zone(request)
        values: Values = {
            "id": stored["id"],
            **text_rows(
                {"title": stored["title"], "text": stored["description"], "link": stored["link"]}
            ),
            "due_local": local_value(stored["due_at"], zone),
            "zone": zone,
            "reminders": " ".join(stored["reminders"]),
            "delivery_hour": ""
            if stored["delivery_hour"] is None
            else str(stored["delivery_hour"]),
            **audience_values(stored["audience"]),
        }
        return await editor_page(request, session, values, editing=deadline_id)

    @router.post("/{deadline_id}/edit")
    async def update(
        request: Request, deadline_id: str, session: Annotated[Session, changing]
    ) -> Response:
        await api.get(f"/v1/deadlines/{deadline_id}")  # 404 before anything else
        return await save(request, session, await form_values(request), deadline_id)

    @router.post("/{deadline_id}/cancel")
    async def cancel(deadline_id: str, session: Annotated[Session, changing]) -> Response:
        answer = await api.call("DELETE", f"/v1/deadlines/{deadline_id}")
        if answer.status == 404:
            raise NotFound(f"no deadline {deadline_id!r}")
        if answer.ok:
            console.flash(
                session,
                "ok",
                f"Deadline {deadline_id} cancelled: "
                f"{answer.body['reminders_cancelled']} reminder(s) will not go out.",
            )
        else:
            console.flash(session, "error", answer.errors()[0]["msg"])
        return RedirectResponse(f"/deadlines/{deadline_id}", status_code=303)

    @router.post("/{deadline_id}/submissions")
    async def record_submission(
        request: Request,
        deadline_id: str,
        session: Annotated[Session, changing],
        city_id: Annotated[str, Form(max_length=63, pattern=SLUG)],
    ) -> Response:
        answer = await api.call(
            "POST", f"/v1/deadlines/{deadline_id}/submissions", json={"city_id": city_id}
        )
        if answer.status == 404:
            raise NotFound(answer.errors()[0]["msg"])
        if answer.ok:
            console.flash(
                session,
                "ok",
                f"{city_id} has submitted: {answer.body['reminders_cancelled']} reminder(s) "
                "cancelled.",
            )
        else:
            console.flash(session, "error", f"{city_id}: {answer.errors()[0]['msg']}")
        return RedirectResponse(f"/deadlines/{deadline_id}#submissions", status_code=303)

    return router


def console_zone(request: Request) -> str:
    return viewer_zone(request.cookies.get("tz")).key
