"""Languages: gettext catalogs (``locales/<lang>/LC_MESSAGES/messages.po``), Babel locales,
and the fallback chain that picks them for a reader.

Catalogs: Arabic, Chinese (Simplified), English (the source: no catalog), French, Korean,
Portuguese, Russian and Spanish. Adding a language is adding its catalog: ``pybabel init -D
messages -i services/gnlc_email/locales/messages.pot -d services/gnlc_email/locales -l ar``,
translating it, done (``tests/unit/test_catalogs.py`` refuses an untranslated, fuzzy or
obsolete entry, a wrong ``Plural-Forms`` and a placeholder the source does not have).
Catalogs are read from their ``.po`` source and compiled in memory at start: no build step,
no binary file to keep in sync.

Chinese is written in two scripts, so its catalog is named with its script, ``zh_Hans``
(Simplified). ``zh``, ``zh-CN``, ``zh-SG`` and ``zh-Hans-*`` readers get it; ``zh-TW``,
``zh-HK``, ``zh-MO`` and ``zh-Hant`` readers (Traditional) do not: a language falls back to a
catalog only when both are written in the same script (CLDR's likely subtags decide), so
they go on down their chain, as any language without a catalog does. ``<html lang>`` and
``Content-Language`` then say ``zh-Hans``, which also makes browsers pick Simplified glyphs.

**Fallback chains.** A reader has languages in order of preference (Casablanca: Arabic, then
French), always ending in English. Three things are picked along the chain, each on its own
(``Choice``): the wording (the first language with a catalog), the dates (the first
language CLDR knows, so a Japanese city without a catalog still reads its dates in Japanese)
and each of the operator's texts (the first language the operator wrote that text in; see
``render.pick_language``). A tag matches exactly, else by language and script: ``fr-CA`` takes
the ``fr`` catalog, ``pt`` a text written for ``pt-BR``.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent / "locales"
SOURCE_LANGUAGE = "en"
DOMAIN = "messages"

#: A reader's languages, most preferred first (BCP 47 tags: ``("ar", "fr")``).
LanguageChain = tuple[str, ...]


class Direction(StrEnum):
    """Text directions, as HTML's ``dir`` writes them."""

    LTR = "ltr"
    RTL = "rtl"


def direction_of(locale: Locale) -> Direction:
    return Direction.RTL if locale.character_order == "right-to-left" else Direction.LTR


@dataclass(frozen=True)
class Language:
    """One language the templates can be rendered in."""

    tag: str  # catalog name: "en", "fr", "zh_Hans"
    translations: gettext.NullTranslations

    @cached_property
    def locale(self) -> Locale:
        return Locale.parse(self.tag)

    @property
    def html_lang(self) -> str:
        """BCP 47 form for ``<html lang>`` and ``Content-Language`` (``zh-Hans``)."""
        return self.tag.replace("_", "-")

    @property
    def direction(self) -> Direction:
        """``rtl`` for right-to-left scripts (Arabic, Persian, Hebrew ...), else ``ltr``."""
        return direction_of(self.locale)

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)


@cache
def normalize(tag: str) -> str:
    """``pt-br`` -> ``pt_BR``, ``zh-hant-tw`` -> ``zh_Hant_TW``: Babel's form of a tag."""
    parts = tag.replace("-", "_").split("_")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif len(part) in (2, 3):
            out.append(part.upper())
        else:
            out.append(part)
    return "_".join(out)


@cache
def script_of(tag: str) -> str:
    """The script a tag is written in, explicit or likely (CLDR): ``zh_TW`` -> ``Hant``,
    ``zh`` -> ``Hans``, ``sr`` -> ``Cyrl``; empty if CLDR does not know the language."""
    parts = normalize(tag).split("_")
    scripts = [p for p in parts[1:] if len(p) == 4 and p.isalpha()]
    if scripts:
        return scripts[0]
    likely = get_global("likely_subtags")
    language = parts[0]
    regions = [p for p in parts[1:] if len(p) in (2, 3)]
    for key in ([f"{language}_{regions[0]}"] if regions else []) + [language]:
        found = likely.get(key)
        if found:
            maximal = found.split("_")
            return next((p for p in maximal[1:] if len(p) == 4), "")
    return ""


def candidates(tag: str, offered: Iterable[str]) -> list[str]:
    """The tags among ``offered`` that serve a reader of ``tag``, best first: the same tag,
    then the same language in the same script (any region), in the order offered."""
    wanted = normalize(tag)
    language, script = wanted.split("_")[0], script_of(wanted)
    exact: list[str] = []
    close: list[str] = []
    for item in offered:
        other = normalize(item)
        if other == wanted:
            exact.append(item)
        elif other.split("_")[0] == language and script_of(other) == script:
            close.append(item)
    return exact + close


def chain(*languages: str | None) -> LanguageChain:
    """A fallback chain: the given languages in order, each once, ending in English."""
    seen: list[str] = []
    for tag in (*languages, SOURCE_LANGUAGE):
        if tag and normalize(tag) not in {normalize(t) for t in seen}:
            seen.append(tag)
    return tuple(seen)


def pick_language(texts: Mapping[str, str], languages: str | Sequence[str]) -> str:
    """Which of ``texts`` suits a reader of ``languages`` (one tag or a chain): the first
    language of the chain the text exists in (exactly, else in the same language and script:
    ``fr-CA`` takes ``fr``, ``pt`` takes ``pt-BR``), else English, else the first given."""
    wanted = chain(languages) if isinstance(languages, str) else chain(*languages)
    for tag in wanted:
        found = candidates(tag, texts)
        if found:
            return found[0]
    return next(iter(texts))


@cache
def cldr_locale(tag: str) -> Locale | None:
    """Babel's locale for a tag, or None if CLDR has no data for it."""
    try:
        return Locale.parse(normalize(tag))
    except (UnknownLocaleError, ValueError):
        return None


def dates_locale(languages: Sequence[str]) -> Locale:
    """The locale dates are written in: the first language of the chain CLDR knows."""
    for tag in languages:
        locale = cldr_locale(tag)
        if locale is not None:
            return locale
    return Locale.parse(SOURCE_LANGUAGE)


def compile_catalog(po_file: Path) -> gettext.GNUTranslations:
    """A ``.po`` file as ready-to-use translations (fuzzy entries left out)."""
    with po_file.open("rb") as handle:
        catalog = read_po(handle, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Catalogs:
    """The languages found under a locales directory, loaded once each."""

    def __init__(self, directory: Path = LOCALES_DIR) -> None:
        self._directory = directory
        self._loaded: dict[str, Language] = {}
        found = {
            path.parent.parent.name
            for path in directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
            if path.is_file()
        }
        self.tags: frozenset[str] = frozenset({SOURCE_LANGUAGE, *found})

    def find(self, wanted: str) -> str | None:
        """The catalog that serves a reader of ``wanted``, if any (exact, else the same
        language and script: ``fr-CA`` -> ``fr``, ``zh-CN`` -> ``zh_Hans``)."""
        found = candidates(wanted, sorted(self.tags))
        return found[0] if found else None

    def choose(self, wanted: str | Sequence[str]) -> str:
        """The catalog for a language or a chain: the first that has one, else English."""
        for tag in (wanted,) if isinstance(wanted, str) else wanted:
            found = self.find(tag)
            if found is not None:
                return found
        return SOURCE_LANGUAGE

    def language(self, wanted: str | Sequence[str]) -> Language:
        tag = self.choose(wanted)
        if tag not in self._loaded:
            po_file = self._directory / tag / "LC_MESSAGES" / f"{DOMAIN}.po"
            translations: gettext.NullTranslations = (
                compile_catalog(po_file) if po_file.is_file() else gettext.NullTranslations()
            )
            self._loaded[tag] = Language(tag, translations)
        return self._loaded[tag]
