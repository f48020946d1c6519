"""Partners and their endpoints (the webhook service's API): list, pause and resume,
rotate the signing secret (the new one shown once)."""

# No `from __future__ import annotations` here: FastAPI must see the routes' Depends,
# made in the router's closure, when the routes are defined.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from gnlc_console.backend import Backend, BackendError, NotFound
from gnlc_console.sessions import Session
from gnlc_console.web import Console, editor, reader

EndpointId = Annotated[str, Path(max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
ACTIONS = {"pause": "paused", "resume": "resumed"}


async def endpoint_health(api: Backend) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Each endpoint's requests, success rate and latency over the last 24 hours (the
    webhook API's ``/v1/endpoint-health``), or why they cannot be shown."""
    try:
        found = await api.get("/v1/endpoint-health")
    except (BackendError, NotFound) as exc:
        return {}, f"Health cannot be shown: {exc}"
    return {h["endpoint_id"]: h for h in found}, None


def endpoint_router(console: Console) -> APIRouter:
    router = APIRouter(prefix="/endpoints")
    api = console.webhooks

    @router.get("")
    async def list_endpoints(
        request: Request, session: Annotated[Session, Depends(reader(console))]
    ) -> Response:
        partners = {p["id"]: p for p in await api.get("/v1/partners")}
        endpoints: list[dict[str, Any]] = await api.get("/v1/endpoints")
        endpoints.sort(key=lambda e: (e["partner"], e["id"]))
        health, health_problem = await endpoint_health(api)
        return console.render(
            request,
            "endpoints.html",
            session=session,
            partners=partners,
            endpoints=endpoints,
            health=health,
            health_problem=health_problem,
        )

    async def act(endpoint_id: str, session: Session, action: str, body: Any = None) -> Any:
        answer = await api.call("POST", f"/v1/endpoints/{endpoint_id}/{action}", json=body)
        if answer.status in (404, 422):
            raise NotFound(f"no endpoint {endpoint_id!r}")
        if not answer.ok:
            console.flash(session, "error", f"{endpoint_id}: {answer.errors()[0]['msg']}")
            return None
        return answer.body

    @router.post("/{endpoint_id}/pause")
    async def pause(
        endpoint_id: EndpointId, session: Annotated[Session, Depends(editor(console))]
    ) -> Response:
        if await act(endpoint_id, session, "pause") is not None:
            console.flash(
                session,
                "ok",
                f"{endpoint_id} paused: what arrives meanwhile is dropped "
                "(replay it later from the CLI or the API).",
            )
        return RedirectResponse(f"/endpoints#{endpoint_id}", status_code=303)

    @router.post("/{endpoint_id}/resume")
    async def resume(
        endpoint_id: EndpointId, session: Annotated[Session, Depends(editor(console))]
    ) -> Response:
        if await act(endpoint_id, session, "resume") is not None:
            console.flash(session, "ok", f"{endpoint_id} resumed.")
        return RedirectResponse(f"/endpoints#{endpoint_id}", status_code=303)

    @router.post("/{endpoint_id}/rotate-secret")
    async def rotate(
        endpoint_id: EndpointId, session: Annotated[Session, Depends(editor(console))]
    ) -> Response:
        answer = await act(endpoint_id, session, "rotate-secret", {})
        if answer is not None:
            key = answer.get("secret") or answer.get("public_key") or ""
            console.flash(
                session,
                "ok",
                f"{endpoint_id}: new signing key. Give it to the partner now; it is not "
                "shown again here. The old one signs too until "
                f"{answer.get('previous_secret_expires_at') or 'the grace period ends'}.",
                [key],
            )
        return RedirectResponse(f"/endpoints#{endpoint_id}", status_code=303)

    return router
