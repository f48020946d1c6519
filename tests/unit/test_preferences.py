"""The preference page: its tokens (a purpose of their own), the decision "does this contact
want this mail" (pure, table-driven), the store, the form's reading and the same-origin
rule, and the page itself in process (GET, POST, forged tokens, cross-site posts, limits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from markupsafe import escape

from gnlc_core.db import create_engine, migrate
from gnlc_email.choices import (
    CATEGORIES,
    DEFAULT,
    Choice,
    Digest,
    decode_categories,
    encode_categories,
    unwanted,
)
from gnlc_email.i18n import Catalogs
from gnlc_email.preference_page import (
    CATEGORY_LABELS,
    MAX_FIELDS,
    MAX_FORM_BYTES,
    BadForm,
    PreferencesState,
    preferences_router,
    preferences_tokens,
    preferences_url,
    read_form,
    same_origin,
)
from gnlc_email.preview import preference_pages
from gnlc_email.store import Preferences
from gnlc_email.unsubscribe import BadToken, Subscriber, Tokens

SECRET = "prefs-secret"
ALICE = Subscriber("focal.point@durban.example.org", "durban", "en")
ASWAN = Subscriber("lll@aswan.example.org", "aswan", "ar")
PUBLIC = "https://notify.example.org"


# -- tokens -----------------------------------------------------------------------------


def test_a_preference_token_names_its_contact() -> None:
    tokens = preferences_tokens([SECRET])
    assert tokens.verify(tokens.sign(ALICE)) == ALICE


@pytest.mark.parametrize(
    ("signer", "verifier"),
    [
        (Tokens([SECRET]), preferences_tokens([SECRET])),  # an unsubscribe link replayed
        (preferences_tokens([SECRET]), Tokens([SECRET])),  # and the other way round
        (preferences_tokens(["another"]), preferences_tokens([SECRET])),  # forged
    ],
)
def test_a_token_of_another_purpose_or_secret_is_refused(signer: Tokens, verifier: Tokens) -> None:
    with pytest.raises(BadToken, match="bad signature"):
        verifier.verify(signer.sign(ALICE))


def test_rotation_keeps_old_preference_links() -> None:
    old = preferences_tokens(["old"]).sign(ALICE)
    assert preferences_tokens(["old", "new"]).verify(old) == ALICE


def test_every_category_has_a_label_on_the_page() -> None:
    assert list(CATEGORY_LABELS) == list(CATEGORIES)


def test_url() -> None:
    assert preferences_url("https://n.example.org/", "a.b/c") == (
        "https://n.example.org/preferences?token=a.b%2Fc"
    )


# -- the decision -------------------------------------------------------------------------

NO_AWARDS = Choice(frozenset({"award"}))
NOTHING = Choice(frozenset(CATEGORIES))


@pytest.mark.parametrize(
    ("category", "unsubscribed", "choice", "reason"),
    [
        (None, False, DEFAULT, None),  # a reminder: required mail
        (None, True, NOTHING, None),  # required mail goes whatever the choices
        ("event", False, DEFAULT, None),
        ("award", False, DEFAULT, None),
        ("award", False, NO_AWARDS, "category off: award"),
        ("event", False, NO_AWARDS, None),
        ("news", False, NOTHING, "category off: news"),
        ("event", True, DEFAULT, "unsubscribed"),
        ("award", True, NO_AWARDS, "unsubscribed"),  # unsubscribed says more
        ("other", False, Choice(digest=Digest.ON), None),  # the digest refuses nothing
    ],
)
def test_does_this_contact_want_this_mail(
    category: str | None, unsubscribed: bool, choice: Choice, reason: str | None
) -> None:
    assert unwanted(category, unsubscribed=unsubscribed, choice=choice) == reason


@pytest.mark.parametrize(
    ("categories", "stored"),
    [
        (frozenset(), ""),
        (frozenset({"call", "event"}), "event,call"),  # the canonical order
        (frozenset(CATEGORIES), "event,award,workshop,news,call,other"),
        (frozenset({"event", "gone"}), "event"),  # unknown ones are not kept
    ],
)
def test_stored_categories(categories: frozenset[str], stored: str) -> None:
    assert encode_categories(categories) == stored
    assert decode_categories(stored) == categories & set(CATEGORIES)


def test_a_category_no_longer_known_is_ignored_when_read() -> None:
    assert decode_categories("event,retired,") == {"event"}


# -- reading the form, the same-origin rule --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "off", "digest", "subscribed"),
    [
        (b"token=t", frozenset(CATEGORIES), Digest.CITY, False),
        (
            b"token=t&subscribed=on&category=event&category=news&digest=on",
            frozenset(CATEGORIES) - {"event", "news"},
            Digest.ON,
            True,
        ),
        (
            b"token=t&category=event&category=event&other=x&digest=off",
            frozenset(CATEGORIES) - {"event"},
            Digest.OFF,
            False,
        ),
        (b"token=t&digest=city", frozenset(CATEGORIES), Digest.CITY, False),
    ],
)
def test_the_form_is_read(
    body: bytes, off: frozenset[str], digest: Digest, subscribed: bool
) -> None:
    posted = read_form(body)
    assert posted.token == "t"
    assert posted.choice == Choice(off, digest)
    assert posted.subscribed is subscribed


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"token=t&category=sports", "a category it does not know"),
        (b"token=t&digest=yes", "a checkbox has an unexpected value"),
        (b"token=t&subscribed=yes", "a checkbox has an unexpected value"),
        (b"token=t&category=" + b"x" * 40, "a field is too long"),
        (b"token=" + b"t" * 3000, "a field is too long"),
        ("&".join(["category=event"] * (MAX_FIELDS + 1)).encode(), "too many fields"),
        ("token=été".encode(), "it is not a web form"),
    ],
)
def test_a_form_the_page_does_not_send_is_refused(body: bytes, problem: str) -> None:
    with pytest.raises(BadForm, match=problem):
        read_form(body)


OURS = frozenset({PUBLIC})


@pytest.mark.parametrize(
    ("origin", "fetch_site", "allowed"),
    [
        (PUBLIC, "same-origin", True),
        (PUBLIC, None, True),
        ("HTTPS://NOTIFY.example.org", None, True),
        (None, None, True),  # not a browser: no cross-site form is possible
        (None, "none", True),  # typed in or a bookmark
        ("https://evil.example", None, False),
        ("https://evil.example", "cross-site", False),
        (None, "cross-site", False),
        (None, "same-site", False),  # a sibling subdomain is another origin
        ("null", None, False),  # a sandboxed or file: page
        ("http://notify.example.org", None, False),  # another scheme
    ],
)
def test_same_origin(origin: str | None, fetch_site: str | None, allowed: bool) -> None:
    assert same_origin(origin, fetch_site, OURS) is allowed


# -- the store --------------------------------------------------------------------------------


@pytest.fixture
async def preferences(tmp_path: Path) -> AsyncIterator[Preferences]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'prefs.db'}")
    await migrate(engine, "email")
    yield Preferences(engine)
    await engine.dispose()


async def test_the_store_keeps_choices_and_resubscribes(preferences: Preferences) -> None:
    assert await preferences.of("Focal.Point@durban.example.org") == (DEFAULT, True)
    await preferences.unsubscribe(ALICE.address, "durban")
    assert await preferences.of(ALICE.address) == (DEFAULT, False)
    await preferences.save("Focal.Point@Durban.example.org", "durban", NO_AWARDS, subscribed=True)
    assert await preferences.of(ALICE.address) == (NO_AWARDS, True)
    assert await preferences.unsubscribed([ALICE.address]) == set()
    await preferences.save(ALICE.address, "durban", Choice(digest=Digest.ON), subscribed=False)
    assert await preferences.of(ALICE.address) == (Choice(digest=Digest.ON), False)
    assert await preferences.choices([ALICE.address, "nobody@x.example.org"]) == {
        ALICE.address: Choice(digest=Digest.ON)
    }
    await preferences.save(ALICE.address, "durban", Choice(digest=Digest.OFF), subscribed=True)
    assert await preferences.of(ALICE.address) == (Choice(digest=Digest.OFF), True)


# -- the page, in process ----------------------------------------------------------------------


def _app(preferences: Preferences | None) -> FastAPI:
    state = PreferencesState(preferences_tokens([SECRET]), preferences)
    app = FastAPI()
    app.include_router(preferences_router(state, Catalogs(), public_url=PUBLIC))
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC)


def _form(
    token: str, *categories: str, digest: Digest = Digest.CITY, subscribed: bool = True
) -> str:
    fields = [("token", token), *(("category", c) for c in categories)]
    fields += [("digest", digest.value)]
    fields += [("subscribed", "on")] if subscribed else []
    return urlencode(fields)


FORM = {"content-type": "application/x-www-form-urlencoded"}
SAME = {**FORM, "origin": PUBLIC, "sec-fetch-site": "same-origin"}
GOOD = preferences_tokens([SECRET]).sign(ALICE)


async def test_get_shows_the_choices_and_changes_nothing(preferences: Preferences) -> None:
    async with _client(_app(preferences)) as client:
        page = await client.get(f"/preferences?token={GOOD}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert ALICE.address in page.text
    assert page.text.count('type="checkbox" name="category"') == len(CATEGORIES)
    # every category, subscribed, and the digest as the city decides
    assert page.text.count(" checked") == len(CATEGORIES) + 2
    assert page.text.count('type="radio" name="digest"') == len(Digest)
    assert '<input type="radio" name="digest" value="city" checked>' in page.text
    assert f'name="token" value="{GOOD}"' in page.text
    assert 'action="/preferences"' in page.text  # the token is in the body, not the URL
    assert await preferences.choices([ALICE.address]) == {}


async def test_post_saves_and_confirms(preferences: Preferences) -> None:
    async with _client(_app(preferences)) as client:
        saved = await client.post(
            "/preferences", content=_form(GOOD, "event", "news", digest=Digest.OFF), headers=SAME
        )
        assert saved.status_code == 200
        assert "Your preferences are saved" in saved.text
        assert '<input type="radio" name="digest" value="off" checked>' in saved.text
        assert await preferences.of(ALICE.address) == (
            Choice(frozenset(CATEGORIES) - {"event", "news"}, Digest.OFF),
            True,
        )
        # unticking "send me announcements" unsubscribes; ticking it again resubscribes
        await client.post("/preferences", content=_form(GOOD, subscribed=False), headers=SAME)
        assert await preferences.unsubscribed([ALICE.address]) == {ALICE.address}
        page = await client.get(f"/preferences?token={GOOD}")
        assert "You unsubscribed from announcements" in page.text
        await client.post("/preferences", content=_form(GOOD, *CATEGORIES), headers=SAME)
    assert await preferences.of(ALICE.address) == (DEFAULT, True)


async def test_the_page_speaks_arabic_right_to_left(preferences: Preferences) -> None:
    token = preferences_tokens([SECRET]).sign(ASWAN)
    async with _client(_app(preferences)) as client:
        page = await client.get(f"/preferences?token={token}")
        saved = await client.post("/preferences", content=_form(token, "award"), headers=SAME)
    assert '<html lang="ar" dir="rtl"' in page.text
    assert "تفضيلات بريدك الإلكتروني" in page.text
    assert "فئات الإعلانات" in page.text
    assert "text-align: right" in page.text
    assert "تم حفظ تفضيلاتك" in saved.text


@pytest.mark.parametrize("tag", sorted(Catalogs().tags))
async def test_the_page_renders_and_saves_in_every_catalog_language(
    preferences: Preferences, tag: str
) -> None:
    """Each language's page shows its own words (the digest's too) and saves a choice."""
    lang = Catalogs().language(tag)
    reader = Subscriber(f"contact.{tag.lower()}@city.example.org", "durban", tag)
    token = preferences_tokens([SECRET]).sign(reader)
    async with _client(_app(preferences)) as client:
        page = await client.get(f"/preferences?token={token}")
        saved = await client.post(
            "/preferences", content=_form(token, "news", digest=Digest.ON), headers=SAME
        )
    assert page.status_code == saved.status_code == 200
    assert f'<html lang="{lang.html_lang}" dir="{lang.direction}"' in page.text
    for words in ("Your GNLC email preferences", "Daily digest", "As my city decides"):
        assert str(escape(lang.gettext(words))) in page.text
    assert page.text.count('type="radio" name="digest"') == len(Digest)
    assert (
        str(escape(lang.gettext("Your preferences are saved. They apply from the next message.")))
        in saved.text
    )
    assert '<input type="radio" name="digest" value="on" checked>' in saved.text
    assert await preferences.of(reader.address) == (
        Choice(frozenset(CATEGORIES) - {"news"}, Digest.ON),
        True,
    )
    if tag != "en":  # a translation, not the English
        assert lang.gettext("Daily digest") != "Daily digest"


UNSUBSCRIBE_TOKEN = Tokens([SECRET]).sign(ALICE)
FORGED = preferences_tokens(["somebody else's"]).sign(
    Subscriber("contact@laval.example.org", "laval", "fr")
)


@pytest.mark.parametrize(
    ("token", "lang", "phrase", "posted_phrase"),
    [
        # an unsubscribe link is no key here
        (UNSUBSCRIBE_TOKEN, "en", "bad signature", "bad signature"),
        # the page in the language the token names
        (FORGED, "fr", "signature non valide", "signature non valide"),
        (GOOD[:-4], "en", "bad signature", "bad signature"),
        ("", "en", "the link has no token", "the link has no token"),
        ("a" * 3000, "en", "the link is too long", "a field is too long"),
    ],
)
async def test_a_bad_token_gets_the_invalid_link_page_and_changes_nothing(
    preferences: Preferences, token: str, lang: str, phrase: str, posted_phrase: str
) -> None:
    async with _client(_app(preferences)) as client:
        shown = await client.get("/preferences", params={"token": token})
        posted = await client.post(
            "/preferences", content=_form(token, subscribed=False), headers=SAME
        )
    for response, expected in ((shown, phrase), (posted, posted_phrase)):
        assert response.status_code == 400
        assert f'<html lang="{lang}"' in response.text
        assert expected in response.text
    assert await preferences.choices([ALICE.address]) == {}
    assert await preferences.unsubscribed([ALICE.address]) == set()


@pytest.mark.parametrize(
    "headers",
    [
        {**FORM, "origin": "https://evil.example"},
        {**FORM, "sec-fetch-site": "cross-site"},
        {**FORM, "origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    ],
)
async def test_a_cross_site_post_is_refused(
    preferences: Preferences, headers: dict[str, str]
) -> None:
    async with _client(_app(preferences)) as client:
        refused = await client.post(
            "/preferences", content=_form(GOOD, subscribed=False), headers=headers
        )
    assert refused.status_code == 403
    assert "sent from another site" in refused.text
    assert await preferences.unsubscribed([ALICE.address]) == set()


async def test_the_services_own_host_is_same_origin_behind_any_public_url(
    preferences: Preferences,
) -> None:
    app = _app(preferences)
    own = "http://email.internal"  # the host the request reached (in process: no port bound)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=own) as client:
        saved = await client.post(
            "/preferences",
            content=_form(GOOD, "event"),
            headers={**FORM, "origin": own},
        )
    assert saved.status_code == 200


@pytest.mark.parametrize(
    ("content", "headers", "status", "phrase"),
    [
        (_form(GOOD, "sports"), SAME, 400, "a category it does not know"),
        (_form(GOOD) + "&x=" + "y" * MAX_FORM_BYTES, SAME, 413, "it is too large"),
        ('{"token": "x"}', {**SAME, "content-type": "application/json"}, 415, "not a web form"),
    ],
)
async def test_limits(
    preferences: Preferences, content: str, headers: dict[str, str], status: int, phrase: str
) -> None:
    async with _client(_app(preferences)) as client:
        refused = await client.post("/preferences", content=content, headers=headers)
    assert refused.status_code == status
    assert phrase in refused.text
    assert "Nothing was changed" in refused.text
    assert await preferences.choices([ALICE.address]) == {}


async def test_before_the_service_has_started() -> None:
    async with _client(_app(None)) as client:
        page = await client.get(f"/preferences?token={GOOD}")
    assert page.status_code == 503


async def test_the_pictures_pages_are_the_served_page(tmp_path: Path) -> None:
    english, arabic = await preference_pages(tmp_path)
    en, ar = english.read_text(), arabic.read_text()
    assert '<html lang="en" dir="ltr"' in en
    assert '<html lang="ar" dir="rtl"' in ar
    assert 'name="category" value="award">' in en  # award turned off in the sample
    assert 'name="category" value="event" checked>' in en
    assert 'name="category" value="news">' in ar


async def test_a_refused_form_is_answered_in_the_language_its_token_names(
    preferences: Preferences,
) -> None:
    token = preferences_tokens([SECRET]).sign(ASWAN)
    async with _client(_app(preferences)) as client:
        refused = await client.post("/preferences", content=_form(token, "sports"), headers=SAME)
    assert refused.status_code == 400
    assert '<html lang="ar" dir="rtl"' in refused.text
    assert "فئة غير معروفة" in refused.text
