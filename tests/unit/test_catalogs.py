"""The gettext catalogs: the template (.pot) matches the source; every catalog is complete
(nothing untranslated, fuzzy or obsolete, no copy of the English), its plural rule is
CLDR's for its language, and no translation loses or invents a placeholder."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog
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


def _read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


#: The six official UN languages, Portuguese and Korean (English is the source).
LANGUAGES = {"ar", "es", "fr", "ko", "pt", "ru", "zh_Hans"}
COUNTS = range(1001)
#: Words that are the same in English and the language, not copies left untranslated.
SAME_AS_ENGLISH = {("fr", "%(num)s minute")}


def test_the_eight_languages_have_catalogs() -> None:
    assert {p.parents[1].name for p in CATALOGS} >= LANGUAGES


def _forms_of_one_number(catalog: Catalog) -> set[int]:
    """Plural forms that stand for one number only (Arabic's 1 and 2): those may say the
    number in words ("يومين") instead of writing it."""
    rule = gettext.c2py(catalog.plural_expr)
    numbers: dict[int, set[int]] = {}
    for n in COUNTS:
        numbers.setdefault(rule(n), set()).add(n)
    return {form for form, ns in numbers.items() if len(ns) == 1}


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.parents[1].name)
def test_catalog_is_complete_and_keeps_placeholders(path: Path) -> None:
    catalog = _read(path)
    assert not catalog.fuzzy, "the header is marked fuzzy: its plural rules would be ignored"
    assert str(catalog.locale) == path.parents[1].name, "Language header and directory differ"
    assert _ids(path) == _ids(LOCALES_DIR / "messages.pot"), "run pybabel update"
    assert not catalog.obsolete, f"obsolete entries: {list(catalog.obsolete)}"
    in_words = _forms_of_one_number(catalog)
    for message in catalog:
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        raw = message.string
        strings = [raw] if isinstance(raw, str) else [str(s) for s in raw or ()]
        assert all(strings), f"untranslated: {ids[0]!r}"
        assert "fuzzy" not in message.flags, f"fuzzy: {ids[0]!r}"
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for form, string in enumerate(strings):
            found = set(PLACEHOLDER.findall(string))
            if isinstance(message.id, tuple) and form in in_words:
                assert found <= wanted, (ids[0], string)
            else:
                assert found == wanted, (ids[0], string)
        words = PLACEHOLDER.sub("", ids[0])
        same = strings[0] == ids[0] and (path.parents[1].name, ids[0]) not in SAME_AS_ENGLISH
        if any(char.isalpha() for char in words):  # not a bare pattern like "%(a)s: %(b)s"
            assert not same, f"a copy of the English: {ids[0]!r}"


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.parents[1].name)
def test_plural_rule_is_cldrs(path: Path) -> None:
    """The catalog's Plural-Forms sorts every count 0-1000 as CLDR's rule for the language
    does, one msgstr[n] per CLDR category (Russian 3, Arabic 6, Chinese and Korean 1)."""
    catalog = _read(path)
    locale = Locale.parse(path.parents[1].name)
    rule = gettext.c2py(catalog.plural_expr)
    form_to_category: dict[int, str] = {}
    for n in COUNTS:
        category = locale.plural_form(n)
        assert form_to_category.setdefault(rule(n), category) == category, (n, category)
    categories = {locale.plural_form(n) for n in COUNTS}
    assert catalog.num_plurals == len(categories) == len(form_to_category)
    for message in catalog:
        if isinstance(message.id, tuple):
            assert isinstance(message.string, tuple | list), message.id
            assert len(message.string) == catalog.num_plurals, message.id
