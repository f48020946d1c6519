"""Languages: gettext catalogs (``locales/<lang>/LC_MESSAGES/messages.po``) and Babel locales.

Adding a language is adding its catalog: ``pybabel init -D messages -i
services/gnlc_email/locales/messages.pot -d services/gnlc_email/locales -l ar``, translating
it, done. Catalogs are read from their ``.po`` source and compiled in memory at start, so
there is no build step and no binary file to keep in sync. English is the source language
and needs no catalog.

A city's language picks the catalog: the exact tag (``pt-BR`` -> ``pt_BR``), else its base
language (``fr-CA`` -> ``fr``), else English. Everything the templates write (wording,
dates, times, zone names, text direction) follows the picked language, so a message is never
half in one language and half in another; texts the operator wrote (titles, bodies) follow
the city's own language first (``pick_text``).
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent / "locales"
SOURCE_LANGUAGE = "en"
DOMAIN = "messages"


@dataclass(frozen=True)
class Language:
    """One language the templates can be rendered in."""

    tag: str  # catalog name: "en", "fr", "pt_BR"
    translations: gettext.NullTranslations

    @cached_property
    def locale(self) -> Locale:
        return Locale.parse(self.tag)

    @property
    def html_lang(self) -> str:
        """BCP 47 form for ``<html lang>`` and ``Content-Language`` (``pt-BR``)."""
        return self.tag.replace("_", "-")

    @property
    def direction(self) -> str:
        """``rtl`` for right-to-left scripts (Arabic, Persian, Hebrew ...), else ``ltr``."""
        return "rtl" if self.locale.character_order == "right-to-left" else "ltr"

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)


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

    def choose(self, wanted: str) -> str:
        """The catalog for a city language: exact, then base language, then English."""
        tag = wanted.replace("-", "_")
        base = tag.split("_")[0]
        for candidate in (tag, base):
            if candidate in self.tags:
                return candidate
        return SOURCE_LANGUAGE

    def language(self, wanted: str) -> Language:
        tag = self.choose(wanted)
        if tag not in self._loaded:
            po_file = self._directory / tag / "LC_MESSAGES" / f"{DOMAIN}.po"
            translations: gettext.NullTranslations = (
                compile_catalog(po_file) if po_file.is_file() else gettext.NullTranslations()
            )
            self._loaded[tag] = Language(tag, translations)
        return self._loaded[tag]
