"""One-click unsubscribe (RFC 8058) for optional mail, with signed links.

Each announcement carries its recipient's own link, ``<public URL>/unsubscribe?token=...``,
in the body and in ``List-Unsubscribe``. The token is the address, the city and the
language, signed with HMAC-SHA256 (itsdangerous) under the service's secret: nobody can
make a link that unsubscribes someone else. ``GET`` shows a page that asks (link checkers
and mail scanners follow GET links, so GET never unsubscribes); ``POST`` unsubscribes, which
is what a mail client's one-click button does (``List-Unsubscribe=One-Click`` in the body).

A damaged, truncated or forged link gets a page (status 400) that says so in the
recipient's language: the one the token names even when its signature does not verify (the
language decides nothing but the wording), else the browser's ``Accept-Language``, else
English.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query
from fastapi.responses import HTMLResponse
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment

from gnlc_core.logs import get_logger
from gnlc_email.i18n import SOURCE_LANGUAGE, Catalogs
from gnlc_email.render import make_environment
from gnlc_email.store import Preferences

log = get_logger(__name__)
SALT = "gnlc-notify/unsubscribe/v1"
MAX_TOKEN = 2048
MAX_ACCEPT_LANGUAGE = 512


def N_(message: str) -> str:
    """Mark a message for the catalogs; the page translates it."""
    return message


NO_TOKEN = N_("the link has no token")
TOO_LONG = N_("the link is too long")
ALTERED = N_("the link is incomplete or was altered (bad signature)")
NO_RECIPIENT = N_("the link does not name a recipient")


@dataclass(frozen=True)
class Subscriber:
    address: str
    city_id: str
    language: str


class BadToken(ValueError):
    """The token is missing parts, altered, or signed with another secret."""


class Tokens:
    """Signs and checks unsubscribe tokens. ``secrets`` lists the current secret last and
    older ones before it, so a rotated secret keeps old links working. ``salt`` names the
    purpose: a token signed for one purpose (unsubscribe, the preference page) does not
    verify for another."""

    def __init__(self, secrets: Sequence[str], *, salt: str = SALT) -> None:
        if not secrets or not all(secrets):
            raise ValueError("an unsubscribe secret is needed")
        self._serializer = URLSafeSerializer(list(secrets), salt=salt)

    def sign(self, subscriber: Subscriber) -> str:
        payload = [subscriber.address.lower(), subscriber.city_id, subscriber.language]
        return str(self._serializer.dumps(payload))

    def verify(self, token: str) -> Subscriber:
        if not token:
            raise BadToken(NO_TOKEN)
        if len(token) > MAX_TOKEN:
            raise BadToken(TOO_LONG)
        try:
            payload = self._serializer.loads(token)
        except BadSignature:
            raise BadToken(ALTERED) from None
        if not _names_recipient(payload):
            raise BadToken(NO_RECIPIENT)
        return Subscriber(*payload)

    def language_hint(self, token: str) -> str | None:
        """The language a token names, signature checked or not (a damaged link still
        says which language its page should speak); None if it names none."""
        if not token or len(token) > MAX_TOKEN:
            return None
        try:
            _valid, payload = self._serializer.loads_unsafe(token)
        except Exception:  # any damage: no hint
            return None
        return payload[2] if _names_recipient(payload) else None


def _names_recipient(payload: object) -> bool:
    return (
        isinstance(payload, list)
        and len(payload) == 3
        and all(isinstance(part, str) and part for part in payload)
    )


def accepted_languages(header: str | None) -> list[str]:
    """The tags of an ``Accept-Language`` header, most wanted first (``q=0`` left out)."""
    if not header:
        return []
    weighted = []
    for position, item in enumerate(header[:MAX_ACCEPT_LANGUAGE].split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                continue
        if quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _q, _p, tag in sorted(weighted)]


def unsubscribe_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/unsubscribe?token={quote(token, safe='')}"


@dataclass
class UnsubscribeState:
    """Filled in when the service has started (the secret may come from the database)."""

    tokens: Tokens | None = None
    preferences: Preferences | None = None


LinkToken = Annotated[str, Query(description="The signed token of the link.")]
AcceptLanguage = Annotated[str | None, Header(include_in_schema=False)]


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

    def reader_language(token: str, accept_language: str | None) -> str:
        """For a page without a valid token: the token's language, the browser's, English."""
        if state.tokens is not None and (hint := state.tokens.language_hint(token)):
            return hint
        for tag in accepted_languages(accept_language):
            if catalogs.choose(tag) != SOURCE_LANGUAGE or tag.lower().startswith("en"):
                return tag
        return SOURCE_LANGUAGE

    def checked(
        token: str, accept_language: str | None
    ) -> tuple[Tokens, Preferences, Subscriber] | HTMLResponse:
        """The subscriber a token names, or the page saying why not."""
        tokens, preferences = state.tokens, state.preferences
        if tokens is None or preferences is None:
            return page(reader_language(token, accept_language), 503, step="unavailable")
        try:
            return tokens, preferences, tokens.verify(token)
        except BadToken as exc:
            return page(
                reader_language(token, accept_language), 400, step="invalid", problem=str(exc)
            )

    responses: dict[int | str, dict[str, Any]] = {
        400: {"description": "The link is missing, damaged or forged: a page saying so."},
        503: {"description": "The service is starting: a page asking to try again."},
    }

    @router.get("/unsubscribe", response_class=HTMLResponse, responses=responses)
    async def confirm(
        token: LinkToken = "", accept_language: AcceptLanguage = None
    ) -> HTMLResponse:
        """A page that asks before unsubscribing (GET must not change anything)."""
        result = checked(token, accept_language)
        if isinstance(result, HTMLResponse):
            return result
        subscriber = result[2]
        return page(
            subscriber.language, 200, step="confirm", address=subscriber.address, token=token
        )

    @router.post("/unsubscribe", response_class=HTMLResponse, responses=responses)
    async def one_click(
        token: LinkToken = "", accept_language: AcceptLanguage = None
    ) -> HTMLResponse:
        """RFC 8058 one-click: the mail client posts ``List-Unsubscribe=One-Click``; the
        confirmation page's button posts the same."""
        result = checked(token, accept_language)
        if isinstance(result, HTMLResponse):
            return result
        _tokens, preferences, subscriber = result
        await preferences.unsubscribe(subscriber.address, subscriber.city_id)
        log.info("unsubscribed", city=subscriber.city_id)
        return page(subscriber.language, 200, step="done", address=subscriber.address, token="")

    return router
