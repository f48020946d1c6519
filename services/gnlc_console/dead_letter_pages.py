"""Dead letters (the status API's ``/v1/dead-letters``): the list with reasons and a
filter, one record with its body, redrive one or all that match (editors)."""

# No `from __future__ import annotations` here: FastAPI must see the routes' Depends,
# made in the router's closure, when the routes are defined.

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from gnlc_console.searches import DEAD_LETTER_CHANNELS, dead_letter_search
from gnlc_console.sessions import Session
from gnlc_console.web import Console, editor, reader

Text = Annotated[str, Query(max_length=400)]
FormText = Annotated[str, Form(max_length=400)]
DeadLetterId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _by(session: Session) -> str:
    return f"console:{session.user.name}"[:100]


def dead_letter_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/dead-letters")
    api = console.status

    @router.get("")
    async def list_dead_letters(
        request: Request,
        session: Annotated[Session, Depends(reader(console))],
        channel: Text = "",
        reason: Text = "",
        state: Text = "",
        offset: Text = "",
    ) -> Response:
        values = {"channel": channel, "reason": reason, "state": state, "offset": offset}
        params, errors = dead_letter_search(values)
        page: dict[str, Any] = {"items": [], "total": 0, "next_offset": None}
        if not errors:
            answer = await api.call("GET", "/v1/dead-letters", params=params)
            if answer.ok:
                page = answer.body
            else:
                errors = {"": [e.get("msg", "refused") for e in answer.errors()]}
        query = {k: v for k, v in values.items() if v and k != "offset"}
        return console.render(
            request,
            "dead_letters.html",
            status_code=422 if errors else 200,
            session=session,
            values=values,
            errors=errors,
            page=page,
            filters=query,
            more=urlencode({**query, "offset": page["next_offset"] or 0}),
            channels=DEAD_LETTER_CHANNELS,
        )

    @router.get("/{dead_letter_id}")
    async def show(
        request: Request,
        dead_letter_id: DeadLetterId,
        session: Annotated[Session, Depends(reader(console))],
    ) -> Response:
        row = await api.get(f"/v1/dead-letters/{dead_letter_id}")
        return console.render(request, "dead_letter.html", session=session, row=row)

    @router.post("/{dead_letter_id}/redrive")
    async def redrive(
        dead_letter_id: DeadLetterId,
        session: Annotated[Session, Depends(editor(console))],
        force: FormText = "",
        back: FormText = "",
    ) -> Response:
        answer = await api.call(
            "POST",
            f"/v1/dead-letters/{dead_letter_id}/redrive",
            json={"by": _by(session), "force": force == "yes"},
        )
        if answer.ok:
            console.flash(
                session,
                "ok",
                f"Dead letter {dead_letter_id} redriven: {answer.body.get('redrive_note')}. "
                "If it fails again it comes back as a new dead letter.",
            )
        else:
            console.flash(session, "error", f"Not redriven: {answer.errors()[0]['msg']}")
        # back to the record, or to the list as it was filtered (always a page of ours)
        if back == "record":
            return RedirectResponse(f"/dead-letters/{dead_letter_id}", status_code=303)
        return RedirectResponse(
            "/dead-letters" + (f"?{back}" if back else "") + f"#dl-{dead_letter_id}",
            status_code=303,
        )

    @router.post("/redrive")
    async def redrive_all(
        session: Annotated[Session, Depends(editor(console))],
        channel: FormText = "",
        reason: FormText = "",
    ) -> Response:
        params, errors = dead_letter_search({"channel": channel, "reason": reason})
        if errors:
            console.flash(session, "error", "Not redriven: the filter is not valid.")
            return RedirectResponse("/dead-letters", status_code=303)
        body: dict[str, Any] = {"by": _by(session)}
        body.update({k: params[k] for k in ("channel", "reason") if k in params})
        answer = await api.call("POST", "/v1/dead-letters/redrive", json=body)
        if answer.ok:
            done = answer.body
            console.flash(
                session,
                "ok" if not done["skipped_count"] else "error",
                f"{len(done['redriven'])} of {done['matched']} dead letter(s) redriven"
                + (f"; {done['skipped_count']} could not be:" if done["skipped_count"] else "."),
                [f"{s['id']}: {s['why']}" for s in done["skipped"]],
            )
        else:
            console.flash(session, "error", f"Not redriven: {answer.errors()[0]['msg']}")
        query = urlencode({k: v for k, v in (("channel", channel), ("reason", reason)) if v})
        return RedirectResponse("/dead-letters" + (f"?{query}" if query else ""), status_code=303)

    return router
