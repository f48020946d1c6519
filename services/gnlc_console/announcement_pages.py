"""Announcements: list, compose in several languages, schedule, edit, withdraw, and the
email previewed for any city and language (HTML and text side by side)."""

# No `from __future__ import annotations` here: FastAPI must see the routes' Depends,
# made in the router's closure, when the routes are defined.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gnlc_console.backend import NotFound
from gnlc_console.deadline_pages import console_zone
from gnlc_console.editing import all_errors, form_values, refusal_errors
from gnlc_console.forms import (
    Errors,
    Values,
    announcement_payload,
    audience_values,
    local_value,
    text_rows,
)
from gnlc_console.previews import LANGUAGES, announcement_preview
from gnlc_console.sessions import Session
from gnlc_console.web import PREVIEW_CSP, Console, editor, reader
from gnlc_core.directory import City
from gnlc_core.settings import Settings
from gnlc_scheduler.deadlines import Announcement

CATEGORIES = ("event", "award", "workshop", "news", "call", "other")
CityQuery = Annotated[str, Query(max_length=63, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
LanguageQuery = Annotated[str, Query(max_length=35)]


def announcement_router(console: Console, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/announcements")
    viewing = Depends(reader(console))
    changing = Depends(editor(console))
    api = console.scheduler

    async def cities() -> list[City]:
        return [City.model_validate(c) for c in await api.get("/v1/cities")]

    async def editor_page(
        request: Request,
        session: Session,
        values: Values,
        errors: Errors | None = None,
        *,
        editing: str | None = None,
        status: int = 200,
    ) -> Response:
        return console.render(
            request,
            "announcement_form.html",
            status_code=status,
            session=session,
            values=values,
            errors=errors or {},
            editing=editing,
            regions=sorted({city.region for city in await cities()}),
            categories=CATEGORIES,
        )

    @router.get("")
    async def list_announcements(
        request: Request, session: Annotated[Session, viewing]
    ) -> Response:
        items = await api.get("/v1/announcements", limit=500)
        return console.render(request, "announcements.html", session=session, items=items)

    @router.get("/new")
    async def new(request: Request, session: Annotated[Session, changing]) -> Response:
        values: Values = {
            "rows": 3,
            "lang_0": "en",
            "category": "news",
            "zone": console_zone(request),
            "audience_kind": "all",
        }
        return await editor_page(request, session, values)

    async def save(
        request: Request, session: Session, values: Values, editing: str | None
    ) -> Response:
        if editing:
            values["id"] = editing
        payload, errors = announcement_payload(values)
        if errors:
            errors = all_errors(Announcement, payload, errors, values)
            return await editor_page(request, session, values, errors, editing=editing, status=422)
        if editing:
            answer = await api.call("PUT", f"/v1/announcements/{editing}", json=payload)
        else:
            answer = await api.call("POST", "/v1/announcements", json=payload)
        if not answer.ok:
            errors = refusal_errors(answer, values)
            return await editor_page(request, session, values, errors, editing=editing, status=422)
        body: dict[str, Any] = answer.body
        console.flash(
            session,
            "ok",
            f"Announcement {payload['id']} scheduled.",
            [f"warning: {w}" for w in body.get("warnings") or []],
        )
        return RedirectResponse(f"/announcements/{payload['id']}", status_code=303)

    @router.post("")
    async def create(request: Request, session: Annotated[Session, changing]) -> Response:
        return await save(request, session, await form_values(request), None)

    @router.get("/{announcement_id}")
    async def show(
        request: Request,
        announcement_id: str,
        session: Annotated[Session, viewing],
        city: CityQuery | None = None,
        language: LanguageQuery = "",
    ) -> Response:
        stored = await api.get(f"/v1/announcements/{announcement_id}")
        everyone = await cities()
        chosen = next((c for c in everyone if c.id == city), everyone[0] if everyone else None)
        if language and language not in LANGUAGES:
            language = ""
        preview = announcement_preview(stored, chosen, language, settings) if chosen else None
        context = {
            "item": stored,
            "cities": everyone,
            "city": chosen,
            "language": language,
            "languages": LANGUAGES,
            "preview": preview,
        }
        return console.render(request, "announcement.html", session=session, **context)

    @router.get("/{announcement_id}/preview.html")
    async def preview_html(
        announcement_id: str,
        _session: Annotated[Session, viewing],
        city: CityQuery,
        language: LanguageQuery = "",
    ) -> Response:
        """The HTML part alone, for the preview's sandboxed frame: its own strict policy
        (no script at all, its inline styles, framed by the console only)."""
        stored = await api.get(f"/v1/announcements/{announcement_id}")
        chosen = next((c for c in await cities() if c.id == city), None)
        if chosen is None:
            raise NotFound(f"no city {city!r}")
        preview = announcement_preview(
            stored, chosen, language if language in LANGUAGES else "", settings
        )
        return HTMLResponse(
            preview.html,
            headers={"content-security-policy": PREVIEW_CSP, "x-frame-options": "SAMEORIGIN"},
        )

    @router.get("/{announcement_id}/edit")
    async def edit(
        request: Request, announcement_id: str, session: Annotated[Session, changing]
    ) -> Response:
        stored = await api.get(f"/v1/announcements/{announcement_id}")
        zone = console_zone(request)
        values: Values = {
            "id": stored["id"],
            "category": stored["category"],
            **text_rows({"title": stored["title"], "text": stored["body"], "link": stored["link"]}),
            "publish_local": local_value(stored["publish_at"], zone),
            "zone": zone,
            **audience_values(stored["audience"]),
        }
        return await editor_page(request, session, values, editing=announcement_id)

    @router.post("/{announcement_id}/edit")
    async def update(
        request: Request, announcement_id: str, session: Annotated[Session, changing]
    ) -> Response:
        await api.get(f"/v1/announcements/{announcement_id}")
        return await save(request, session, await form_values(request), announcement_id)

    @router.post("/{announcement_id}/withdraw")
    async def withdraw(announcement_id: str, session: Annotated[Session, changing]) -> Response:
        answer = await api.call("DELETE", f"/v1/announcements/{announcement_id}")
        if answer.status == 404:
            raise NotFound(f"no announcement {announcement_id!r}")
        if answer.ok:
            console.flash(session, "ok", f"Announcement {announcement_id} withdrawn.")
        else:
            console.flash(session, "error", answer.errors()[0]["msg"])
        return RedirectResponse(f"/announcements/{announcement_id}", status_code=303)

    return router
