"""Rendering, pure: an event and a city in; subject, text and HTML bodies (and for deadline
reminders an ``.ics`` entry) out, in the city's language and local time.

Three template pairs share one layout (``layout.html`` / ``layout.txt``): deadline reminder,
overdue reminder and announcement. HTML autoescapes. The stylesheet (``email.css``) is
inlined into ``style`` attributes once, when a template is loaded, not per message: the
templates keep template tags out of table structure so inlining the source is the same as
inlining the output (``tests/unit/test_render.py`` checks that it is).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from gnlc_core.directory import City
from gnlc_core.events import AnnouncementPublishedEvent, DeadlineReminder, DeadlineReminderEvent
from gnlc_email.calendar import deadline_ics
from gnlc_email.dates import local_date, local_datetime, span, utc_datetime
from gnlc_email.dates import zone as zone_of
from gnlc_email.i18n import Catalogs, Language

TEMPLATES_DIR = Path(__file__).parent / "templates"
FALLBACK_LANGUAGE = "en"
#: Stands in for a recipient's own unsubscribe URL until ``RenderedEmail.for_recipient``.
UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.invalid/gnlc-recipient-link"
DEFAULT_DOMAIN = "notify.gnlc.example.org"

Event = DeadlineReminderEvent | AnnouncementPublishedEvent


class Kind(StrEnum):
    """The template families; also the names the preview command takes."""

    DEADLINE_REMINDER = "deadline-reminder"
    OVERDUE_REMINDER = "overdue-reminder"
    ANNOUNCEMENT = "announcement"

    @property
    def template(self) -> str:
        return self.value.replace("-", "_")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # with parameters, e.g. 'text/calendar; method=PUBLISH'
    data: bytes


@dataclass(frozen=True)
class RenderedEmail:
    kind: Kind
    language: str  # BCP 47 tag of the wording used ("fr", "en")
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()

    @property
    def optional(self) -> bool:
        """Announcements are optional mail (unsubscribe); reminders are required mail."""
        return self.kind is Kind.ANNOUNCEMENT

    def for_recipient(self, unsubscribe_url: str | None) -> RenderedEmail:
        """The bodies with this recipient's own unsubscribe link in place."""
        if UNSUBSCRIBE_PLACEHOLDER not in self.text:
            return self
        url = unsubscribe_url or ""
        return replace(
            self,
            text=self.text.replace(UNSUBSCRIBE_PLACEHOLDER, url),
            html=self.html.replace(UNSUBSCRIBE_PLACEHOLDER, str(escape(url))),
        )


def pick_language(texts: dict[str, str], language: str) -> str:
    """Which of ``texts`` suits a reader of ``language``: that language, else its base
    language, else English, else the first given."""
    base = language.split("-")[0]
    for candidate in (language, base, FALLBACK_LANGUAGE):
        if candidate in texts:
            return candidate
    return next(iter(texts))


def pick_text(texts: dict[str, str], language: str) -> str:
    """The text in ``language``, else its base language, else English, else any."""
    return texts[pick_language(texts, language)]


def _text_choice(event: Event, language: str) -> str:
    """The operator's texts a reader of ``language`` gets, as one key: readers with the
    same key and catalog get the same draft."""
    data = event.data
    texts: list[dict[str, str] | None] = [data.title]
    if isinstance(data, DeadlineReminder):
        texts.append(data.description)
    else:
        texts.append(data.body)
    return "/".join(pick_language(t, language) if t else "-" for t in texts)


def paragraphs(text: str | None) -> list[str]:
    """Blank-line separated paragraphs, stripped, empty ones dropped."""
    if not text:
        return []
    return [part.strip() for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]


def inline_css(source: str, css: str) -> str:
    """``css`` inlined into a template's HTML: a whole document, or a child template's
    fragments (template tags are text to the HTML parser and come through unchanged)."""
    if source.lstrip().lower().startswith("<!doctype"):
        return str(css_inline.CSSInliner(extra_css=css, keep_style_tags=False).inline(source))
    return str(css_inline.inline_fragment(source, css))


class _InliningLoader(BaseLoader):
    """Loads templates from a directory and inlines the stylesheet into the HTML ones."""

    def __init__(self, directory: Path, css: str) -> None:
        self._files = FileSystemLoader(directory)
        self._css = css

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self._files.get_source(environment, template)
        if template.endswith(".html") and self._css:
            source = inline_css(source, self._css)
        return source, filename, uptodate


def make_environment(
    language: Language, directory: Path = TEMPLATES_DIR, *, inline: bool = True
) -> Environment:
    """A Jinja2 environment with ``language``'s catalog installed (``jinja2.ext.i18n``)."""
    css = (directory / "email.css").read_text(encoding="utf-8") if inline else ""
    env = Environment(
        loader=_InliningLoader(directory, css),
        extensions=["jinja2.ext.i18n"],
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.install_gettext_translations(language.translations, newstyle=True)  # type: ignore[attr-defined]
    return env


def _categories(lang: Language) -> dict[str, str]:
    return {
        "event": lang.gettext("Event"),
        "award": lang.gettext("Award"),
        "workshop": lang.gettext("Workshop"),
        "news": lang.gettext("News"),
        "call": lang.gettext("Call for applications"),
        "other": lang.gettext("Announcement"),
    }


_SLOT = re.compile("\ue000([a-z_]+)\ue001")


def slot(name: str) -> str:
    """A stand-in for a city's own value in a draft; private-use characters, so it cannot
    collide with any text and no escaping touches it."""
    return f"\ue000{name}\ue001"


@dataclass(frozen=True)
class Draft:
    """An event rendered in one language, with the city's own values (name, local times)
    still open as slots: an event for all members is rendered once per language, then
    filled per city."""

    kind: Kind
    language: str
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()

    def fill(self, values: dict[str, str]) -> RenderedEmail:
        escaped = {name: str(escape(value)) for name, value in values.items()}
        return RenderedEmail(
            self.kind,
            self.language,
            _SLOT.sub(lambda m: values[m.group(1)], self.subject),
            _SLOT.sub(lambda m: values[m.group(1)], self.text),
            _SLOT.sub(lambda m: escaped[m.group(1)], self.html),
            self.attachments,
        )


class Renderer:
    """Renders events for cities; holds one template environment per language."""

    def __init__(
        self,
        catalogs: Catalogs | None = None,
        *,
        templates: Path = TEMPLATES_DIR,
        domain: str = DEFAULT_DOMAIN,
    ) -> None:
        self.catalogs = catalogs or Catalogs()
        self._templates = templates
        self._domain = domain
        self._environments: dict[str, Environment] = {}

    def _environment(self, lang: Language) -> Environment:
        env = self._environments.get(lang.tag)
        if env is None:
            env = self._environments[lang.tag] = make_environment(lang, self._templates)
        return env

    def _bodies(self, kind: Kind, lang: Language, context: dict[str, Any]) -> tuple[str, str]:
        env = self._environment(lang)
        context = {"language": lang, **context}
        return (
            env.get_template(f"{kind.template}.txt").render(context),
            env.get_template(f"{kind.template}.html").render(context),
        )

    def render(self, event: Event, city: City) -> RenderedEmail:
        """``event`` for one city."""
        return self.render_many(event, [city])[0]

    def render_many(self, event: Event, cities: Sequence[City]) -> list[RenderedEmail]:
        """``event`` for each city, in order; one template pass per language."""
        drafts: dict[tuple[str, str], Draft] = {}
        rendered = []
        for city in cities:
            lang = self.catalogs.language(city.language)
            key = (lang.tag, _text_choice(event, city.language))
            draft = drafts.get(key)
            if draft is None:
                draft = drafts[key] = self.draft(event, lang, city.language)
            rendered.append(draft.fill(city_values(event, city, lang)))
        return rendered

    def draft(self, event: Event, lang: Language, text_language: str) -> Draft:
        """``event`` in ``lang``'s wording, with the operator's texts picked for
        ``text_language`` and the city's values left as slots."""
        if isinstance(event, DeadlineReminderEvent):
            return self._reminder(event, lang, text_language)
        return self._announcement(event, lang, text_language)

    def _reminder(self, event: DeadlineReminderEvent, lang: Language, text_language: str) -> Draft:
        data = event.data
        title = pick_text(data.title, text_language)
        offset = data.offset_seconds
        words = {"title": title, "span": span(offset, lang), "date": slot("due_date")}
        if offset > 0:
            kind = Kind.OVERDUE_REMINDER
            status = lang.gettext("Was due %(span)s ago.") % words
            subject = lang.gettext("Overdue: %(title)s – was due %(date)s") % words
        elif offset == 0:
            kind = Kind.DEADLINE_REMINDER
            status = lang.gettext("Due now.") % words
            subject = lang.gettext("Reminder: %(title)s – due now (%(date)s)") % words
        else:
            kind = Kind.DEADLINE_REMINDER
            status = lang.gettext("Due in %(span)s.") % words
            subject = lang.gettext("Reminder: %(title)s – due in %(span)s (%(date)s)") % words
        description = pick_text(data.description, text_language) if data.description else None
        text, html = self._bodies(
            kind,
            lang,
            {
                "subject": subject,
                "event_id": event.id,
                "city_name": slot("city"),
                "title": title,
                "status": status,
                "due_local": slot("due_local"),
                "due_utc": utc_datetime(data.due_at, lang),
                "description": paragraphs(description),
                "link": data.link,
            },
        )
        attachments: tuple[Attachment, ...] = ()
        if kind is Kind.DEADLINE_REMINDER:
            ics = deadline_ics(
                deadline_id=data.deadline_id,
                summary=lang.gettext("Due: %(title)s") % words,
                description="\n\n".join(
                    part
                    for part in (title, utc_datetime(data.due_at, lang), description, data.link)
                    if part
                ),
                due_at=data.due_at,
                stamp=event.time,
                link=data.link,
                language=lang.html_lang,
                domain=self._domain,
                alarm_label=lang.gettext("Due in one day: %(title)s") % words,
            )
            attachments = (
                Attachment(f"{data.deadline_id}.ics", "text/calendar; method=PUBLISH", ics),
            )
        return Draft(kind, lang.html_lang, subject, text, html, attachments)

    def _announcement(
        self, event: AnnouncementPublishedEvent, lang: Language, text_language: str
    ) -> Draft:
        data = event.data
        title = pick_text(data.title, text_language)
        category = _categories(lang)[data.category]
        subject = lang.gettext("%(category)s: %(title)s") % {"category": category, "title": title}
        text, html = self._bodies(
            Kind.ANNOUNCEMENT,
            lang,
            {
                "subject": subject,
                "event_id": event.id,
                "city_name": slot("city"),
                "title": title,
                "category": category,
                "body": [p.split("\n") for p in paragraphs(pick_text(data.body, text_language))],
                "published_local": slot("published_local"),
                "link": data.link,
                "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
            },
        )
        return Draft(Kind.ANNOUNCEMENT, lang.html_lang, subject, text, html)


def city_values(event: Event, city: City, lang: Language) -> dict[str, str]:
    """What differs from city to city once the language is chosen: name and local times."""
    zone = zone_of(city.timezone)
    if isinstance(event, DeadlineReminderEvent):
        due = event.data.due_at
        return {
            "city": city.name,
            "due_local": local_datetime(due, zone, lang),
            "due_date": local_date(due, zone, lang),
        }
    return {
        "city": city.name,
        "published_local": local_datetime(event.data.published_at, zone, lang),
    }


@cache
def default_renderer() -> Renderer:
    return Renderer()


def render(event: Event, city: City) -> RenderedEmail:
    """``event`` rendered for ``city`` with the packaged templates and catalogs."""
    return default_renderer().render(event, city)
