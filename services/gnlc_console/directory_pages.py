"""The city directory (the scheduler's): the cities, an import (CSV, YAML or JSON, all or
nothing) that shows every problem of every row at once, and a city's edit form."""

# No `from __future__ import annotations` here: FastAPI must see the routes' Depends,
# made in the router's closure, when the routes are defined.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from gnlc_console.backend import Answer
from gnlc_console.city_panels import contacts_panel, notices_panel
from gnlc_console.editing import form_values
from gnlc_console.forms import Errors
from gnlc_console.sessions import Session
from gnlc_console.web import Console, editor, reader

#: What the scheduler imports, at most (its own limit); the console's body limit for the
#: upload is a little above, for the form's envelope.
MAX_IMPORT = 4 * 1024 * 1024
TYPES = {
    ".csv": "text/csv",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".json": "application/json",
}
CityId = Annotated[str, Path(max_length=63, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
#: A problem's column, as the city form names its field.
CITY_FIELDS = {
    "name": "name",
    "country": "country",
    "region": "region",
    "timezone": "timezone",
    "language": "languages",
    "languages": "languages",
    "contact_email": "contacts",
    "contacts": "contacts",
    "active": "active",
}


def content_type_of(filename: str) -> str | None:
    """The import's content type, told by the file's name."""
    suffix = filename[filename.rfind(".") :].lower() if "." in filename else ""
    return TYPES.get(suffix)


def problems_of(answer: Answer) -> list[tuple[str, str]]:
    """(where, what) of every problem a refused import names: ``("line 5 · timezone", ...)``."""
    rows = []
    for problem in answer.errors():
        loc = [str(part) for part in problem.get("loc") or [] if str(part) != "body"]
        rows.append((" · ".join(loc) or "the file", str(problem.get("msg", ""))))
    return rows


def city_payload(values: dict[str, Any], city_id: str) -> dict[str, Any]:
    languages = str(values.get("languages", "")).replace(",", " ").split()
    contacts = str(values.get("contacts", "")).replace(",", " ").split()
    return {
        "id": city_id,
        "name": str(values.get("name", "")).strip(),
        "country": str(values.get("country", "")).strip(),
        "region": str(values.get("region", "")).strip(),
        "timezone": str(values.get("timezone", "")).strip(),
        "language": languages[0] if languages else "",
        "languages": languages,
        "contacts": contacts,
        "active": values.get("active") == "on",
        "digest": values.get("digest") == "on",
    }


def city_errors(answer: Answer) -> Errors:
    errors: Errors = {}
    for problem in answer.errors():
        loc = [str(part) for part in problem.get("loc") or []]
        field = next((CITY_FIELDS[p] for p in reversed(loc) if p in CITY_FIELDS), "")
        errors.setdefault(field, []).append(str(problem.get("msg", "")))
    return errors


def directory_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/directory")
    api = console.scheduler

    async def page(
        request: Request,
        session: Session,
        *,
        problems: list[tuple[str, str]] | None = None,
        filename: str = "",
        status: int = 200,
    ) -> Response:
        cities = await api.get("/v1/cities")
        return console.render(
            request,
            "directory.html",
            status_code=status,
            session=session,
            cities=cities,
            problems=problems or [],
            filename=filename,
        )

    @router.get("")
    async def directory(
        request: Request, session: Annotated[Session, Depends(reader(console))]
    ) -> Response:
        return await page(request, session)

    @router.post("/import")
    async def import_cities(
        request: Request,
        session: Annotated[Session, Depends(editor(console))],
        file: Annotated[UploadFile, File()],
    ) -> Response:
        name = file.filename or ""
        content_type = content_type_of(name)
        if content_type is None:
            problem = ("the file", f"{name or 'no file'}: give a .csv, .yaml or .json file")
            return await page(request, session, problems=[problem], filename=name, status=422)
        body = await file.read(MAX_IMPORT + 1)
        if len(body) > MAX_IMPORT:
            problem = ("the file", f"larger than {MAX_IMPORT} bytes; import it in parts")
            return await page(request, session, problems=[problem], filename=name, status=413)
        answer = await api.call_raw("POST", "/v1/cities/import", body, content_type)
        if not answer.ok:
            return await page(
                request, session, problems=problems_of(answer), filename=name, status=422
            )
        console.flash(session, "ok", f"{name}: {answer.body['imported']} cities imported.")
        return RedirectResponse("/directory", status_code=303)

    async def city_form(
        request: Request,
        session: Session,
        city_id: str,
        values: dict[str, Any],
        zone: str,
        errors: Errors | None = None,
        status: int = 200,
    ) -> Response:
        return console.render(
            request,
            "city_form.html",
            status_code=status,
            session=session,
            city_id=city_id,
            values=values,
            errors=errors or {},
            zone=zone,
            contacts=await contacts_panel(console.email, city_id),
            notices=await notices_panel(console.status, city_id),
        )

    @router.get("/{city_id}/edit")
    async def edit(
        request: Request, city_id: CityId, session: Annotated[Session, Depends(editor(console))]
    ) -> Response:
        city = await api.get(f"/v1/cities/{city_id}")
        values = {
            **city,
            "languages": " ".join(city.get("languages") or [city["language"]]),
            "contacts": "\n".join(city["contacts"]),
            "active": "on" if city.get("active", True) else "",
            "digest": "on" if city.get("digest", False) else "",
        }
        return await city_form(request, session, city_id, values, city["timezone"])

    @router.post("/{city_id}/edit")
    async def save(
        request: Request, city_id: CityId, session: Annotated[Session, Depends(editor(console))]
    ) -> Response:
        stored = await api.get(f"/v1/cities/{city_id}")  # 404 before anything else
        values = await form_values(request)
        answer = await api.call("POST", "/v1/cities/import", json=[city_payload(values, city_id)])
        if not answer.ok:
            return await city_form(
                request, session, city_id, values, stored["timezone"], city_errors(answer), 422
            )
        console.flash(session, "ok", f"{city_id} saved.")
        return RedirectResponse("/directory", status_code=303)

    return router
