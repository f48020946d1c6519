"""One-click unsubscribe (RFC 8058) for optional mail, with signed links.

Each announcement carries its recipient's own link, ``<public URL>/unsubscribe?token=...``,
in the body and in ``List-Unsubscribe``. The token is the address, the city and the
language, signed with HMAC-SHA256 (itsdangerous) under the service's secret: nobody can
make a link that unsubscribes someone else. ``GET`` shows a page that asks (link checkers
and mail scanners follow GET links, so GET never unsubscribes); ``POST`` unsubscribes, which
is what a mail client's one-click button does (``List-Unsubscribe=One-Click`` in the body).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment

from gnlc_core.logs import get_logger
from gnlc_email.i18n import Catalogs
from gnlc_email.render import make_environment
from gnlc_email.store import Preferences

log = get_logger(__name__)
SALT = "gnlc-notify/unsubscribe/v1"


@dataclass(frozen=True)
class Subscriber:
    address: str
    city_id: str
    language: str


class BadToken(ValueError):
    """The token is missing parts, altered, or signed with another secret."""


class Tokens:
    """Signs and checks unsubscribe tokens. ``secrets`` lists the current secret last and
    older ones before it, so a rotated secret keeps old links working."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets or not all(secrets):
            raise ValueError("an unsubscribe secret is needed")
        self._serializer = URLSafeSerializer(list(secrets), salt=SALT)

    def sign(self, subscriber: Subscriber) -> str:
        payload = [subscriber.address.lower(), subscriber.city_id, subscriber.language]
        return str(self._serializer.dumps(payload))

    def verify(self, token: str) -> Subscriber:
        try:
            payload = self._serializer.loads(token)
        except BadSignature:
            raise BadToken("the link is incomplete or was altered (bad signature)") from None
        if (
            not isinstance(payload, list)
            or len(payload) != 3
            or not all(isinstance(part, str) for part in payload)
        ):
            raise BadToken("the link does not name a recipient")
        return Subscriber(*payload)


def unsubscribe_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/unsubscribe?token={quote(token, safe='')}"


@dataclass
class UnsubscribeState:
    """Filled in when the service has started (the secret may come from the database)."""

    tokens: Tokens | None = None
    preferences: Preferences | None = None


def unsubscribe_router(state: UnsubscribeState, catalogs: Catalogs) -> APIRouter:
    router = APIRouter(tags=["unsubscribe"])
    environments: dict[str, Environment] = {}

    def page(language: str, status: int, **context: object) -> HTMLResponse:
        lang = catalogs.language(language)
        env = environments.get(lang.tag)
        if env is None:
            env = environments[lang.tag] = make_environment(lang)
        html = env.get_template("unsubscribe_page.html").render(language=lang, **context)
        return HTMLResponse(html, status_code=status)

    def ready() -> tuple[Tokens, Preferences] | None:
        if state.tokens is None or state.preferences is None:
            return None
        return state.tokens, state.preferences

    @router.get("/unsubscribe", response_class=HTMLResponse)
    async def confirm(token: str = Query(min_length=1, max_length=2048)) -> HTMLResponse:
        """A page that asks before unsubscribing (GET must not change anything)."""
        parts = ready()
        if parts is None:
            return page("en", 503, step="unavailable", token=token)
        try:
            subscriber = parts[0].verify(token)
        except BadToken as exc:
            return page("en", 400, step="invalid", problem=str(exc), token="")
        return page(
            subscriber.language, 200, step="confirm", address=subscriber.address, token=token
        )

    @router.post("/unsubscribe", response_model=None)
    async def one_click(
        token: str = Query(min_length=1, max_length=2048),
    ) -> HTMLResponse | JSONResponse:
        """RFC 8058 one-click: the mail client posts ``List-Unsubscribe=One-Click``; the
        confirmation page's button posts the same."""
        parts = ready()
        if parts is None:
            return JSONResponse({"detail": "not ready, try again shortly"}, status_code=503)
        tokens, preferences = parts
        try:
            subscriber = tokens.verify(token)
        except BadToken as exc:
            return JSONResponse({"detail": f"token: {exc}"}, status_code=400)
        await preferences.unsubscribe(subscriber.address, subscriber.city_id)
        log.info("unsubscribed", city=subscriber.city_id)
        return page(subscriber.language, 200, step="done", address=subscriber.address, token="")

    return router
