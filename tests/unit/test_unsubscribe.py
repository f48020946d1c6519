"""Signed unsubscribe tokens."""

from __future__ import annotations

import pytest

from gnlc_email.unsubscribe import BadToken, Subscriber, Tokens, unsubscribe_url

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
