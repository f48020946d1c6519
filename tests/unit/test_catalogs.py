"""The gettext catalogs: the template (.pot) matches the source, every catalog is complete,
and no translation loses or invents a placeholder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from gnlc_email.i18n import LOCALES_DIR

PACKAGE = LOCALES_DIR.parent
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
CATALOGS = sorted(LOCALES_DIR.glob("*/LC_MESSAGES/messages.po"))


def _extracted() -> set[str | tuple[str, str]]:
    method_map = [
        ("**.py", "python"),
        ("templates/**.html", "jinja2"),
        ("templates/**.txt", "jinja2"),
    ]
    options = {"templates/**": {"trim_blocks": "true", "lstrip_blocks": "true"}}
    found: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        PACKAGE, method_map, options
    ):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def _ids(path: Path) -> set[str | tuple[str, str]]:
    with path.open("rb") as handle:
        catalog = read_po(handle)
    return {m.id if isinstance(m.id, str) else (m.id[0], m.id[1]) for m in catalog if m.id}


def test_the_template_matches_the_source() -> None:
    """Run ``pybabel extract`` (command in babel.cfg) when this fails."""
    assert _ids(LOCALES_DIR / "messages.pot") == _extracted()


def test_english_french_and_spanish_at_least() -> None:
    assert {p.parents[1].name for p in CATALOGS} >= {"fr", "es"}


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.parents[1].name)
def test_catalog_is_complete_and_keeps_placeholders(path: Path) -> None:
    with path.open("rb") as handle:
        catalog = read_po(handle)
    assert not catalog.fuzzy, "the header is marked fuzzy: its plural rules would be ignored"
    assert _ids(path) == _ids(LOCALES_DIR / "messages.pot"), "run pybabel update"
    for message in catalog:
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        raw = message.string
        strings = [raw] if isinstance(raw, str) else [str(s) for s in raw or ()]
        assert all(strings), f"untranslated: {ids[0]!r}"
        assert "fuzzy" not in message.flags, f"fuzzy: {ids[0]!r}"
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == wanted, (ids[0], string)
