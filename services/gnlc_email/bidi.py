"""Text direction, pure: which way a text runs, and keeping names, codes, URLs and dates of
one direction from disturbing a sentence of the other (Unicode Bidirectional Algorithm).

In HTML a value is isolated with ``<bdi>`` (and blocks carry ``lang`` and ``dir``); in plain
text and subjects with the Unicode isolates FSI (U+2068) and PDI (U+2069), which clients
that know them use and others show as nothing. Plain text is isolated only where needed:
when the value holds a letter of the other direction than the sentence around it, so an
English mail with an English city name carries no invisible characters at all.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from babel.core import get_global
from markupsafe import Markup, escape

from gnlc_email.i18n import Direction, cldr_locale, direction_of, normalize

FSI = "\u2068"  # first strong isolate
PDI = "\u2069"  # pop directional isolate

_RTL_CLASSES = frozenset({"R", "AL"})
_MARKS = frozenset({"\u200e", "\u200f"})  # LRM, RLM: they settle their own context


def first_strong(text: str) -> Direction | None:
    """The direction of the first letter with a direction (rule P2: what ``dir="auto"``
    and FSI use); None for text of digits and punctuation only."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return Direction.LTR
        if kind in _RTL_CLASSES:
            return Direction.RTL
    return None


def has_opposite(text: str, context: Direction) -> bool:
    """Whether ``text`` holds a letter that runs against ``context``."""
    opposite = {"L"} if context is Direction.RTL else _RTL_CLASSES
    return any(unicodedata.bidirectional(char) in opposite for char in text if char not in _MARKS)


@lru_cache(maxsize=8192)
def isolate(text: str, context: Direction) -> str:
    """``text`` between FSI and PDI when it could disturb a ``context`` sentence."""
    if text and has_opposite(text, context):
        return f"{FSI}{text}{PDI}"
    return text


def language_direction(tag: str) -> Direction:
    """The direction a language is written in (LTR when CLDR does not know it)."""
    locale = cldr_locale(tag)
    return direction_of(locale) if locale is not None else Direction.LTR


#: ISO 15924 codes of the scripts of Unicode character names' first word.
_SCRIPTS = {
    "LATIN": "Latn",
    "ARABIC": "Arab",
    "HEBREW": "Hebr",
    "SYRIAC": "Syrc",
    "THAANA": "Thaa",
    "NKO": "Nkoo",
    "CYRILLIC": "Cyrl",
    "GREEK": "Grek",
    "ARMENIAN": "Armn",
    "GEORGIAN": "Geor",
    "DEVANAGARI": "Deva",
    "BENGALI": "Beng",
    "TAMIL": "Taml",
    "THAI": "Thai",
    "ETHIOPIC": "Ethi",
    "CJK": "Hani",
    "HANGUL": "Hang",
    "HIRAGANA": "Hira",
    "KATAKANA": "Kana",
}
#: Scripts a language's script takes in: Chinese characters in Japanese and Korean, kana in
#: Japanese, Hangul in Korean.
_WITHIN = {
    "Hans": {"Hani"},
    "Hant": {"Hani"},
    "Jpan": {"Hani", "Hira", "Kana"},
    "Kore": {"Hani", "Hang"},
}


def script_of(text: str) -> str | None:
    """The ISO 15924 script of the first letter with a direction (``Arab``, ``Latn``),
    None when there is none or its script is not one of those named here."""
    for char in text:
        if unicodedata.bidirectional(char) in {"L", "R", "AL"}:
            return _SCRIPTS.get(unicodedata.name(char, "").split(" ")[0])
    return None


@lru_cache(maxsize=256)
def _likely_script(tag: str) -> str | None:
    """The script a language is most likely written in (CLDR likely subtags)."""
    locale = cldr_locale(tag)
    if locale is None:
        return None
    if locale.script:
        return str(locale.script)
    likely = get_global("likely_subtags").get(locale.language, "")
    parts = likely.split("_")
    return parts[1] if len(parts) > 1 and len(parts[1]) == 4 else None


def _fits(script: str, expected: str | None) -> bool:
    return expected is None or script == expected or script in _WITHIN.get(expected, set())


@dataclass(frozen=True)
class Text:
    """A text the operator wrote, with the language it was given in and its direction:
    the direction of its first letter (an Arabic title filed under ``en`` still reads
    right to left), else its language's."""

    text: str
    lang: str  # BCP 47

    @property
    def dir(self) -> Direction:
        return first_strong(self.text) or language_direction(self.lang)

    @property
    def html_lang(self) -> str:
        """Its ``lang``: the language it was given in, unless its letters are of another
        script than that language is written in (an Arabic title filed under ``en``), then
        the script alone, language undetermined: ``und-Arab``."""
        found = script_of(self.text)
        if found is None or _fits(found, _likely_script(self.lang)):
            return self.lang
        return f"und-{found}"

    @property
    def align(self) -> str:
        """HTML ``align`` for a block of this text (for clients that ignore ``dir``)."""
        return "right" if self.dir is Direction.RTL else "left"

    @property
    def paragraphs(self) -> list[str]:
        """Blank-line separated paragraphs, stripped, empty ones dropped."""
        parts = self.text.replace("\r\n", "\n").split("\n\n")
        return [part.strip() for part in parts if part.strip()]

    def __str__(self) -> str:
        return self.text


def bdi(value: object, lang: str | None = None, direction: Direction | None = None) -> Markup:
    """``value`` (escaped) in ``<bdi>``, with its language and direction when given."""
    attributes = ""
    if lang:
        attributes += f' lang="{escape(normalize(lang).replace("_", "-"))}"'
    if direction:
        attributes += f' dir="{direction.value}"'
    return Markup(f"<bdi{attributes}>{escape(value)}</bdi>")  # noqa: S704 - escaped above
