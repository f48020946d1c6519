"""Signed unsubscribe tokens."""

from __future__ import annotations

from typing import cast

import httpx
import pytest
from fastapi import FastAPI

from gnlc_email.i18n import Catalogs
from gnlc_email.store import Preferences
from gnlc_email.unsubscribe import (
    BadToken,
    Subscriber,
    Tokens,
    UnsubscribeState,
    accepted_languages,
    unsubscribe_router,
    unsubscribe_url,
)

ALICE = Subscriber("Focal.Point@durban.example.org", "durban", "en")


def test_a_token_names_its_recipient() -> None:
    tokens = Tokens(["s3cret"])
    assert tokens.verify(tokens.sign(ALICE)) == Subscriber(
        "focal.point@durban.example.org", "durban", "en"
    )


def test_an_altered_token_is_refused() -> None:
    tokens = Tokens(["s3cret"])
    token = tokens.sign(ALICE)
    payload, _, signature = token.rpartition(".")
    other = Tokens(["s3cret"]).sign(Subscriber("bob@laval.example.org", "laval", "fr"))
    forged = other.rpartition(".")[0] + "." + signature
    with pytest.raises(BadToken, match="bad signature"):
        tokens.verify(forged)
    with pytest.raises(BadToken):
        tokens.verify(payload + ".AAAA")
    with pytest.raises(BadToken):
        tokens.verify("garbage")


def test_another_secret_does_not_verify_and_rotation_keeps_old_links() -> None:
    old = Tokens(["old"]).sign(ALICE)
    with pytest.raises(BadToken):
        Tokens(["new"]).verify(old)
    rotated = Tokens(["old", "new"])
    assert rotated.verify(old).city_id == "durban"
    assert Tokens(["new"]).verify(rotated.sign(ALICE)).city_id == "durban"  # signs with newest


def test_no_secret_no_tokens() -> None:
    with pytest.raises(ValueError, match="secret"):
        Tokens([])


def test_url() -> None:
    assert unsubscribe_url("https://n.example.org/", "a.b-c_d") == (
        "https://n.example.org/unsubscribe?token=a.b-c_d"
    )


# -- the page a damaged link gets -----------------------------------------------------------

SECRET = "page-secret"


def _client() -> httpx.AsyncClient:
    state = UnsubscribeState(
        tokens=Tokens([SECRET]),
        preferences=cast(Preferences, object()),  # a refused link never reaches it
    )
    app = FastAPI()
    app.include_router(unsubscribe_router(state, Catalogs()))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


LAVAL = Subscriber("contact@laval.example.org", "laval", "fr-CA")
FORGED_FR = Tokens(["somebody else's secret"]).sign(LAVAL)
GOOD_FR = Tokens([SECRET]).sign(LAVAL)


@pytest.mark.parametrize(
    ("method", "query", "accept", "lang", "phrases"),
    [
        # forged (another secret): the language the token names, whatever the browser says
        ("GET", f"?token={FORGED_FR}", "es", "fr", ["n’est pas valide", "signature non valide"]),
        ("POST", f"?token={FORGED_FR}", None, "fr", ["signature non valide"]),
        # truncated: signature gone, payload still readable
        ("GET", f"?token={GOOD_FR[:-5]}", None, "fr", ["signature non valide"]),
        # nothing readable: the browser's language, best first
        ("GET", "?token=garbage", "de;q=0.9, es-CO", "es", ["no es válido", "firma no válida"]),
        ("GET", "?token=garbage", "zz, de", "en", ["is not valid", "bad signature"]),
        ("GET", "", None, "en", ["the link has no token"]),
        ("POST", "?token=", "fr-FR", "fr", ["ne contient pas le code de vérification"]),
        ("GET", "?token=" + "a" * 3000, None, "en", ["the link is too long"]),
    ],
)
async def test_a_damaged_link_gets_a_page_in_the_readers_language(
    method: str, query: str, accept: str | None, lang: str, phrases: list[str]
) -> None:
    headers = {"accept-language": accept} if accept else {}
    async with _client() as client:
        response = await client.request(method, f"/unsubscribe{query}", headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert f'<html lang="{lang}"' in response.text
    for phrase in phrases:
        assert phrase in response.text


async def test_a_good_link_asks_in_the_citys_language() -> None:
    async with _client() as client:
        response = await client.get(f"/unsubscribe?token={GOOD_FR}")
    assert response.status_code == 200
    assert '<html lang="fr"' in response.text
    assert "contact@laval.example.org" in response.text


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        (None, []),
        ("", []),
        ("fr", ["fr"]),
        ("de;q=0.5, es-CO, en;q=0.8", ["es-CO", "en", "de"]),
        ("fr;q=0, *;q=0.1, pt", ["pt"]),
        ("es;q=abc, it", ["it"]),
    ],
)
def test_accepted_languages(header: str | None, wanted: list[str]) -> None:
    assert accepted_languages(header) == wanted
