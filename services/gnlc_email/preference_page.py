"""The preference page: each contact's own page, reached by a signed link in every
announcement (beside the one-click unsubscribe, which stays as it is, RFC 8058).

``GET /preferences?token=...`` shows the contact's choices: the categories of announcements
it receives, the daily digest (on, off, or as its city decides: the directory's
``digest``), and whether it receives announcements at all (a contact who unsubscribed
resubscribes here). ``POST /preferences`` saves them and answers
with the page again, saying so.

The token is the unsubscribe token's kind (address, city, language, HMAC-signed with the
same secrets) under another purpose (salt), so neither kind of link can be replayed as the
other. A token link is its own credential, so the form is protected against cross-site
requests by carrying the token in the form's body (never in the action URL, where a
Referer could leak it) and by a same-origin check: a POST whose ``Origin`` is another site,
or that the browser marks ``Sec-Fetch-Site: cross-site``/``same-site``, is refused (403)
and changes nothing. A missing, damaged, forged or unsubscribe token gets the localized
"invalid link" page (400). Every field is bounded: the body (``MAX_FORM_BYTES``), the number
of fields, the token (``unsubscribe.MAX_TOKEN``); a category the service does not know is
refused (400), nothing is stored before the whole form is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from markupsafe import Markup

from gnlc_core.logs import get_logger
from gnlc_email.choices import CATEGORIES, Choice, Digest
from gnlc_email.i18n import SOURCE_LANGUAGE, Catalogs
from gnlc_email.render import make_environment
from gnlc_email.store import Preferences
from gnlc_email.unsubscribe import (
    MAX_TOKEN,
    N_,
    AcceptLanguage,
    BadToken,
    LinkToken,
    Subscriber,
    Tokens,
    accepted_languages,
)

log = get_logger(__name__)
SALT = "gnlc-notify/preferences/v1"
PATH = "/preferences"
MAX_FORM_BYTES = 4096
MAX_FIELDS = 16
#: Longest value of a field other than the token (categories and ``on``).
MAX_VALUE = 32
FORM_TYPE = "application/x-www-form-urlencoded"
#: What a checked checkbox sends.
ON = "on"
#: ``Sec-Fetch-Site`` values a browser sends for a form of this page (``none``: typed in).
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})

#: The page's label of each category (the mails' labels, but "other" reads as a kind).
CATEGORY_LABELS = {
    "event": N_("Event"),
    "award": N_("Award"),
    "workshop": N_("Workshop"),
    "news": N_("News"),
    "call": N_("Call for applications"),
    "other": N_("Other announcements"),
}

#: The page's label of each digest choice.
DIGEST_LABELS = {
    Digest.CITY: N_("As my city decides"),
    Digest.ON: N_("One daily digest instead of separate messages"),
    Digest.OFF: N_("Separate messages"),
}

UNKNOWN_CATEGORY = N_("a category it does not know")
TOO_MANY_FIELDS = N_("too many fields")
FIELD_TOO_LONG = N_("a field is too long")
NOT_A_FORM = N_("it is not a web form")
BAD_FLAG = N_("a checkbox has an unexpected value")
TOO_LARGE = N_("it is too large")


def checkbox(name: str, value: str, checked: bool, kind: str = "checkbox") -> Markup:
    """A checkbox, or a radio button (written here: the stylesheet inliner parses the
    template as HTML, so a template cannot put a tag inside an element's attributes)."""
    mark = Markup(" checked") if checked else Markup("")
    return Markup('<input type="{}" name="{}" value="{}"{}>').format(kind, name, value, mark)


def preferences_tokens(secrets: list[str]) -> Tokens:
    """Tokens of preference links (the unsubscribe secrets, another purpose)."""
    return Tokens(secrets, salt=SALT)


def preferences_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{PATH}?token={quote(token, safe='')}"


class BadForm(ValueError):
    """The posted form is not one the page sends (the message names what)."""


@dataclass(frozen=True)
class Posted:
    token: str
    choice: Choice
    subscribed: bool


def read_form(body: bytes) -> Posted:
    """The page's form from a urlencoded body, every field checked (pure)."""
    try:
        fields = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            strict_parsing=False,
        )
    except UnicodeDecodeError:
        raise BadForm(NOT_A_FORM) from None
    except ValueError:
        raise BadForm(TOO_MANY_FIELDS) from None
    token, wanted, subscribed, digest = "", set(), False, Digest.CITY
    for name, value in fields:
        if len(value) > (MAX_TOKEN if name == "token" else MAX_VALUE):
            raise BadForm(FIELD_TOO_LONG)
        if name == "token":
            token = value
        elif name == "category":
            if value not in CATEGORIES:
                raise BadForm(UNKNOWN_CATEGORY)
            wanted.add(value)
        elif name == "subscribed":
            if value != ON:
                raise BadForm(BAD_FLAG)
            subscribed = True
        elif name == "digest":
            try:
                digest = Digest(value)
            except ValueError:
                raise BadForm(BAD_FLAG) from None
    off = frozenset(CATEGORIES) - wanted
    return Posted(token, Choice(off, digest), subscribed)


def token_in(body: bytes) -> str:
    """The token a form carries, read leniently (only to pick the language of the page
    that refuses the form)."""
    try:
        found = parse_qs(body.decode("ascii"), max_num_fields=MAX_FIELDS).get("token", [""])
    except ValueError:  # not ASCII, too many fields
        return ""
    return found[0][:MAX_TOKEN]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(origin: str | None, fetch_site: str | None, allowed: frozenset[str]) -> bool:
    """Whether a POST comes from this service's own page (pure): the browser's
    ``Sec-Fetch-Site`` says so, and ``Origin``, when sent, is one of ``allowed``. A client
    that sends neither (not a browser, or a very old one) cannot be a cross-site form."""
    if fetch_site is not None and fetch_site.lower() not in SAME_SITE_FETCHES:
        return False
    if origin is None:
        return True
    return origin.lower() in allowed


@dataclass
class PreferencesState:
    """Filled in when the service has started (the secret may come from the database)."""

    tokens: Tokens | None = None
    preferences: Preferences | None = None


def preferences_router(
    state: PreferencesState,
    catalogs: Catalogs,
    *,
    public_url: str,
) -> APIRouter:
    router = APIRouter(tags=["preferences"])
    environments: dict[str, Environment] = {}
    public_origin = origin_of(public_url)

    def page(language: str, status: int, **context: Any) -> HTMLResponse:
        lang = catalogs.language(language)
        env = environments.get(lang.tag)
        if env is None:
            env = environments[lang.tag] = make_environment(lang)
        context.setdefault("saved", False)
        html = env.get_template("preferences_page.html").render(
            language=lang,
            categories=CATEGORY_LABELS,
            digest_options=DIGEST_LABELS,
            action=PATH,
            checkbox=checkbox,
            **context,
        )
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return HTMLResponse(html, status_code=status, headers=headers)

    def reader_language(token: str, accept_language: str | None) -> str:
        if state.tokens is not None and (hint := state.tokens.language_hint(token)):
            return hint
        for tag in accepted_languages(accept_language):
            if catalogs.choose(tag) != SOURCE_LANGUAGE or tag.lower().startswith("en"):
                return tag
        return SOURCE_LANGUAGE

    def checked(
        token: str, accept_language: str | None
    ) -> tuple[Preferences, Subscriber] | HTMLResponse:
        tokens, preferences = state.tokens, state.preferences
        if tokens is None or preferences is None:
            return page(reader_language(token, accept_language), 503, step="unavailable")
        try:
            return preferences, tokens.verify(token)
        except BadToken as exc:
            return page(
                reader_language(token, accept_language), 400, step="invalid", problem=str(exc)
            )

    async def form_page(
        preferences: Preferences, subscriber: Subscriber, token: str, *, saved: bool
    ) -> HTMLResponse:
        choice, subscribed = await preferences.of(subscriber.address)
        return page(
            subscriber.language,
            200,
            step="form",
            saved=saved,
            address=subscriber.address,
            token=token,
            choice=choice,
            subscribed=subscribed,
        )

    responses: dict[int | str, dict[str, Any]] = {
        400: {
            "description": "The link is missing, damaged or forged, or the form is not "
            "the page's: a page saying so."
        },
        403: {"description": "The form was posted from another site: nothing changed."},
        413: {"description": "The form is larger than the page ever sends."},
        415: {"description": "Not a web form."},
        503: {"description": "The service is starting: a page asking to try again."},
    }

    @router.get(PATH, response_class=HTMLResponse, responses=responses)
    async def show(token: LinkToken = "", accept_language: AcceptLanguage = None) -> HTMLResponse:
        """The contact's choices, as a form (GET changes nothing)."""
        result = checked(token, accept_language)
        if isinstance(result, HTMLResponse):
            return result
        return await form_page(*result, token, saved=False)

    @router.post(PATH, response_class=HTMLResponse, responses=responses)
    async def save(request: Request) -> HTMLResponse:
        """Saves the form (the token in its body), then shows the page again."""
        accept_language = request.headers.get("accept-language")
        allowed = frozenset({public_origin, origin_of(str(request.base_url))})
        if not same_origin(
            request.headers.get("origin"), request.headers.get("sec-fetch-site"), allowed
        ):
            log.warning("preference form from another site refused")
            return page(reader_language("", accept_language), 403, step="cross-site")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != FORM_TYPE:
            return page(
                reader_language("", accept_language), 415, step="bad-form", problem=NOT_A_FORM
            )
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return page(
                    reader_language("", accept_language), 413, step="bad-form", problem=TOO_LARGE
                )
        try:
            posted = read_form(body)
        except BadForm as exc:
            language = reader_language(token_in(body), accept_language)
            return page(language, 400, step="bad-form", problem=str(exc))
        result = checked(posted.token, accept_language)
        if isinstance(result, HTMLResponse):
            return result
        preferences, subscriber = result
        await preferences.save(
            subscriber.address, subscriber.city_id, posted.choice, subscribed=posted.subscribed
        )
        log.info("preferences saved", city=subscriber.city_id)
        return await form_page(preferences, subscriber, posted.token, saved=True)

    return router
