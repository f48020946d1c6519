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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import css_inline
from babel import Locale
from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from gnlc_core.directory import City
from gnlc_core.events import (
    AnnouncementPublishedEvent,
    ChangeEvent,
    DeadlineCancelledEvent,
    DeadlineReminder,
    DeadlineReminderEvent,
    DeadlineRevision,
)
from gnlc_email.bidi import Text, bdi, isolate
from gnlc_email.calendar import Method, deadline_ics, for_attendee
from gnlc_email.dates import day_label, local_date, local_datetime, span, utc_datetime
from gnlc_email.dates import zone as zone_of
from gnlc_email.i18n import (
    SOURCE_LANGUAGE,
    Catalogs,
    Direction,
    Language,
    LanguageChain,
    chain,
    dates_locale,
    direction_of,
)
from gnlc_email.i18n import pick_language as pick_language  # the renderer's callers use it

TEMPLATES_DIR = Path(__file__).parent / "templates"
FALLBACK_LANGUAGE = SOURCE_LANGUAGE
#: Stands in for a recipient's own unsubscribe URL until ``RenderedEmail.for_recipient``.
UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.invalid/gnlc-recipient-link"
#: Stands in for a recipient's own preference page link, the same way.
PREFERENCES_PLACEHOLDER = "https://preferences.invalid/gnlc-recipient-link"
DEFAULT_DOMAIN = "notify.gnlc.example.org"

Event = DeadlineReminderEvent | AnnouncementPublishedEvent | ChangeEvent


class Kind(StrEnum):
    """The template families; also the names the preview command takes."""

    DEADLINE_REMINDER = "deadline-reminder"
    OVERDUE_REMINDER = "overdue-reminder"
    ANNOUNCEMENT = "announcement"
    DEADLINE_UPDATED = "deadline-updated"  # its calendar entry changed
    DEADLINE_CANCELLED = "deadline-cancelled"  # its calendar entry withdrawn
    DIGEST = "digest"  # a local day's notices of one contact in one mail (``render_digest``)

    @property
    def template(self) -> str:
        if self in {Kind.DEADLINE_UPDATED, Kind.DEADLINE_CANCELLED}:
            return "deadline_changed"
        return self.value.replace("-", "_")


@dataclass(frozen=True)
class CalendarMark:
    """The calendar entry a mail carries: which deadline, which revision, and whether it
    withdraws the entry (the consumer records who received what)."""

    deadline_id: str
    sequence: int
    withdrawn: bool = False


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # with parameters, e.g. 'text/calendar; method=REQUEST'
    data: bytes


@dataclass(frozen=True)
class RenderedEmail:
    kind: Kind
    language: str  # BCP 47 tag of the wording used ("fr", "en"): Content-Language, the notice
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()
    dates_language: str = SOURCE_LANGUAGE  # BCP 47 tag of the dates' locale
    calendar: CalendarMark | None = None
    #: A digest that lists announcements (its unsubscribe link is theirs).
    lists_announcements: bool = False

    @property
    def optional(self) -> bool:
        """Announcements are optional mail (unsubscribe); reminders are required mail; a
        digest is optional mail when it lists an announcement (unsubscribing stops those)."""
        return self.kind is Kind.ANNOUNCEMENT or self.lists_announcements

    @property
    def preference_link(self) -> bool:
        """Whether the mail carries the contact's preference page link: announcements and
        every digest (where the digest is turned off)."""
        return self.kind in {Kind.ANNOUNCEMENT, Kind.DIGEST}

    def for_recipient(
        self,
        unsubscribe_url: str | None,
        attendee: tuple[str, str] | None = None,
        preferences_url: str | None = None,
    ) -> RenderedEmail:
        """The bodies with this recipient's own unsubscribe and preference links in place,
        and the calendar entry with the recipient (address, name) as its attendee."""
        personal = self
        if attendee is not None and self.attachments:
            personal = replace(
                personal,
                attachments=tuple(
                    replace(a, data=for_attendee(a.data, *attendee))
                    if a.content_type.startswith("text/calendar")
                    else a
                    for a in self.attachments
                ),
            )
        if UNSUBSCRIBE_PLACEHOLDER not in self.text and PREFERENCES_PLACEHOLDER not in self.text:
            return personal
        links = {
            UNSUBSCRIBE_PLACEHOLDER: unsubscribe_url or "",
            PREFERENCES_PLACEHOLDER: preferences_url or "",
        }
        text, html = self.text, self.html
        for placeholder, url in links.items():
            text = text.replace(placeholder, url)
            html = html.replace(placeholder, str(escape(url)))
        return replace(personal, text=text, html=html)


def pick_text(texts: Mapping[str, str], languages: str | Sequence[str]) -> str:
    """The text for a reader of ``languages`` (see ``pick_language``)."""
    return texts[pick_language(texts, languages)]


def operator_text(texts: Mapping[str, str], languages: Sequence[str]) -> Text:
    """The operator's text for the chain, with the language it is in."""
    tag = pick_language(texts, languages)
    return Text(texts[tag], tag)


def pick_link(link: str | Mapping[str, str] | None, languages: Sequence[str]) -> str | None:
    """One link for everyone, or a link per language picked along the chain."""
    if link is None or isinstance(link, str):
        return link
    return pick_text(link, languages)


def _text_choice(event: Event, languages: Sequence[str]) -> str:
    """The operator's texts a reader of ``languages`` gets, as one key: readers with the
    same key and catalog get the same draft."""
    data = event.data
    texts: list[Mapping[str, str] | str | None] = [data.title, data.link]
    if isinstance(data, DeadlineReminder | DeadlineRevision):
        texts.append(data.description)
    else:
        texts.append(data.body)
    return "/".join(
        pick_language(t, languages) if t and not isinstance(t, str) else "-" for t in texts
    )


@dataclass(frozen=True)
class Choice:
    """What a reader's chain picked, each on its own: the wording's catalog and the dates'
    locale (the operator's texts are picked per text, ``operator_text``)."""

    languages: LanguageChain
    wording: Language
    dates: Locale

    @property
    def dates_tag(self) -> str:
        return str(self.dates).replace("_", "-")


def city_languages(city: City) -> LanguageChain:
    """A city's languages in order of preference (the directory's chain, ``language``
    first), ending in English."""
    return chain(*(city.languages or (city.language,)))


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


def stylesheet(language: Language, directory: Path = TEMPLATES_DIR) -> str:
    """The CSS a language's mail is inlined with: ``email.css``, then ``email.rtl.css`` for
    right-to-left languages (the layout mirrored), then ``email.<language>.css`` if there is
    one (the font stack that language reads best in)."""
    names = ["email.css"]
    if language.direction is Direction.RTL:
        names.append("email.rtl.css")
    names.append(f"email.{language.locale.language}.css")
    return "\n".join(
        (directory / name).read_text(encoding="utf-8")
        for name in names
        if (directory / name).is_file()
    )


def make_environment(
    language: Language, directory: Path = TEMPLATES_DIR, *, inline: bool = True
) -> Environment:
    """A Jinja2 environment with ``language``'s catalog installed (``jinja2.ext.i18n``) and
    its stylesheet inlined; filters ``isolate`` (FSI/PDI around a value that runs against
    the language's direction, for plain text) and ``bdi`` (``<bdi>`` around a value, HTML)."""
    css = stylesheet(language, directory) if inline else ""
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
    direction = language.direction
    env.filters["isolate"] = lambda value: isolate(str(value), direction)
    env.filters["bdi"] = bdi
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
    filled per city.

    Slot values are isolated from the sentence around them: in the subject, the text part
    and the HTML ``<title>`` with FSI/PDI where their letters run the other way, in the HTML
    body with ``<bdi>`` (dates with their own ``lang`` and ``dir`` when they are in another
    language than the wording)."""

    kind: Kind
    language: str
    direction: Direction
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()
    dates_language: str = SOURCE_LANGUAGE
    dates_direction: Direction = Direction.LTR
    calendar: CalendarMark | None = None

    def fill(self, values: dict[str, str]) -> RenderedEmail:
        other = self.dates_language != self.language
        forms = {
            name: _forms(
                value,
                self.direction,
                self.dates_language if other and name in DATE_SLOTS else None,
                self.dates_direction if other and name in DATE_SLOTS else None,
            )
            for name, value in values.items()
        }
        head, mark, body = self.html.partition("</title>")
        if not mark:
            head, body = "", self.html
        return RenderedEmail(
            self.kind,
            self.language,
            _SLOT.sub(lambda m: forms[m.group(1)][0], self.subject),
            _SLOT.sub(lambda m: forms[m.group(1)][0], self.text),
            _SLOT.sub(lambda m: forms[m.group(1)][1], head)
            + mark
            + _SLOT.sub(lambda m: forms[m.group(1)][2], body),
            self.attachments,
            self.dates_language,
            self.calendar,
        )


@lru_cache(maxsize=8192)
def _forms(
    value: str, context: Direction, lang: str | None, direction: Direction | None
) -> tuple[str, str, str]:
    """A city's value as the subject and text part take it (isolated where needed), as the
    HTML head takes it (that, escaped) and as the HTML body takes it (in ``<bdi>``)."""
    plain = isolate(value, context)
    return plain, str(escape(plain)), str(bdi(value, lang, direction))


#: Slots holding dates (written in the dates' language, which may not be the wording's).
DATE_SLOTS = frozenset({"due_local", "due_date", "published_local"})


class Renderer:
    """Renders events for cities; holds one template environment per language."""

    def __init__(
        self,
        catalogs: Catalogs | None = None,
        *,
        templates: Path = TEMPLATES_DIR,
        domain: str = DEFAULT_DOMAIN,
        organizer: str | None = None,
    ) -> None:
        self.catalogs = catalogs or Catalogs()
        self._templates = templates
        self._domain = domain
        self._organizer = organizer  # the calendar entries' ORGANIZER address
        self._environments: dict[str, Environment] = {}
        self._choices: dict[LanguageChain, Choice] = {}

    def _environment(self, lang: Language) -> Environment:
        env = self._environments.get(lang.tag)
        if env is None:
            env = self._environments[lang.tag] = make_environment(lang, self._templates)
        return env

    def bodies(self, kind: Kind, lang: Language, context: dict[str, Any]) -> tuple[str, str]:
        """The text and HTML bodies of ``kind``'s templates in ``lang``."""
        env = self._environment(lang)
        context = {"language": lang, **context}
        return (
            env.get_template(f"{kind.template}.txt").render(context),
            env.get_template(f"{kind.template}.html").render(context),
        )

    def choose(self, languages: Sequence[str]) -> Choice:
        """What a chain picks: the wording's catalog and the dates' locale, each on its own."""
        full = chain(*languages)
        chosen = self._choices.get(full)
        if chosen is None:
            chosen = self._choices[full] = Choice(
                full, self.catalogs.language(full), dates_locale(full)
            )
        return chosen

    def render(
        self, event: Event, city: City, languages: Sequence[str] | None = None
    ) -> RenderedEmail:
        """``event`` for one city, in its languages (or the chain given)."""
        return self.render_many(event, [city], None if languages is None else [languages])[0]

    def render_many(
        self,
        event: Event,
        cities: Sequence[City],
        languages: Sequence[Sequence[str]] | None = None,
    ) -> list[RenderedEmail]:
        """``event`` for each city, in order, each in its languages (``city_languages``, or
        the chains given, one per city); one template pass per choice of languages."""
        drafts: dict[tuple[str, str, str], Draft] = {}
        keys: dict[LanguageChain, tuple[Choice, tuple[str, str, str]]] = {}
        rendered = []
        for index, city in enumerate(cities):
            wanted = tuple(city_languages(city) if languages is None else languages[index])
            known = keys.get(wanted)
            if known is None:
                chosen = self.choose(wanted)
                text_key = _text_choice(event, chosen.languages)
                known = keys[wanted] = (chosen, (chosen.wording.tag, str(chosen.dates), text_key))
            chosen, key = known
            draft = drafts.get(key)
            if draft is None:
                draft = drafts[key] = self.draft(event, chosen)
            rendered.append(draft.fill(city_values(event, city, chosen.dates)))
        return rendered

    def draft(self, event: Event, chosen: Choice) -> Draft:
        """``event`` in the chosen wording, dates and operator's texts, with the city's
        values left as slots."""
        if isinstance(event, DeadlineReminderEvent):
            return self._reminder(event, chosen)
        if isinstance(event, AnnouncementPublishedEvent):
            return self._announcement(event, chosen)
        return self._change(event, chosen)

    def _draft(
        self, kind: Kind, chosen: Choice, subject: str, context: dict[str, Any]
    ) -> tuple[Draft, Callable[[tuple[Attachment, ...]], Draft]]:
        lang = chosen.wording
        other = chosen.dates_tag != lang.html_lang
        dates = {
            "dates_lang": chosen.dates_tag if other else None,
            "dates_dir": direction_of(chosen.dates) if other else None,
        }
        text, html = self.bodies(kind, lang, {"subject": subject, **dates, **context})
        draft = Draft(
            kind,
            lang.html_lang,
            lang.direction,
            subject,
            text,
            html,
            (),
            chosen.dates_tag,
            direction_of(chosen.dates),
        )
        return draft, lambda attachments: replace(draft, attachments=attachments)

    def _reminder(self, event: DeadlineReminderEvent, chosen: Choice) -> Draft:
        data = event.data
        lang = chosen.wording
        title = operator_text(data.title, chosen.languages)
        offset = data.offset_seconds
        words = {
            "title": isolate(title.text, lang.direction),
            "span": span(offset, lang),
            "date": slot("due_date"),
        }
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
        description = (
            operator_text(data.description, chosen.languages) if data.description else None
        )
        link = pick_link(data.link, chosen.languages)
        due_utc = utc_datetime(data.due_at, chosen.dates)
        draft, with_attachments = self._draft(
            kind,
            chosen,
            subject,
            {
                "event_id": event.id,
                "city_name": slot("city"),
                "title": title,
                "status": status,
                "due_local": slot("due_local"),
                "due_utc": due_utc,
                "description": description,
                "link": link,
            },
        )
        if kind is not Kind.DEADLINE_REMINDER:
            return draft
        entry = self._calendar_entry(
            data, lang, title, description, link, due_utc, data.revised_at or event.time
        )
        return replace(
            with_attachments((entry,)), calendar=CalendarMark(data.deadline_id, data.sequence)
        )

    def _calendar_entry(
        self,
        data: DeadlineReminder | DeadlineRevision,
        lang: Language,
        title: Text,
        description: Text | None,
        link: str | None,
        due_utc: str,
        stamp: datetime,
        method: Method = Method.REQUEST,
    ) -> Attachment:
        """The deadline's calendar entry as of the revision ``data`` carries."""
        ics = deadline_ics(
            deadline_id=data.deadline_id,
            summary=lang.gettext("Due: %(title)s") % {"title": title.text},
            description="\n\n".join(
                part
                for part in (
                    title.text,
                    due_utc,
                    description.text if description else None,
                    link,
                )
                if part
            ),
            due_at=data.due_at,
            stamp=stamp,
            link=link,
            language=lang.html_lang,
            domain=self._domain,
            alarm_label=lang.gettext("Due in one day: %(title)s") % {"title": title.text},
            sequence=data.sequence,
            method=method,
            organizer=self._organizer,
        )
        return Attachment(f"{data.deadline_id}.ics", method.content_type, ics)

    def _change(self, event: ChangeEvent, chosen: Choice) -> Draft:
        """A changed or withdrawn calendar entry, with a few words on what happened."""
        data = event.data
        lang = chosen.wording
        title = operator_text(data.title, chosen.languages)
        words = {"title": isolate(title.text, lang.direction), "date": slot("due_date")}
        if isinstance(event, DeadlineCancelledEvent):
            kind, method = Kind.DEADLINE_CANCELLED, Method.CANCEL
            subject = lang.gettext("Cancelled: %(title)s") % words
            if event.data.reason == "submitted":
                status = lang.gettext(
                    "Your city has submitted: this deadline is removed from your calendar."
                )
            else:
                status = lang.gettext("This deadline has been cancelled.")
            note = lang.gettext(
                "The attached calendar entry (.ics) removes the deadline from your calendar."
            )
        else:
            kind, method = Kind.DEADLINE_UPDATED, Method.REQUEST
            subject = lang.gettext("Updated: %(title)s – now due %(date)s") % words
            status = lang.gettext("This deadline has changed.")
            note = lang.gettext("The attached calendar entry (.ics) updates the one you received.")
        description = (
            operator_text(data.description, chosen.languages) if data.description else None
        )
        link = pick_link(data.link, chosen.languages)
        due_utc = utc_datetime(data.due_at, chosen.dates)
        _, with_attachments = self._draft(
            kind,
            chosen,
            subject,
            {
                "event_id": event.id,
                "city_name": slot("city"),
                "title": title,
                "status": status,
                "due_local": slot("due_local"),
                "due_utc": due_utc,
                "description": description,
                "link": link,
                "calendar_note": note,
                "cancelled": method is Method.CANCEL,
            },
        )
        entry = self._calendar_entry(
            data, lang, title, description, link, due_utc, data.revised_at, method
        )
        mark = CalendarMark(data.deadline_id, data.sequence, withdrawn=method is Method.CANCEL)
        return replace(with_attachments((entry,)), calendar=mark)

    def _announcement(self, event: AnnouncementPublishedEvent, chosen: Choice) -> Draft:
        data = event.data
        lang = chosen.wording
        title = operator_text(data.title, chosen.languages)
        category = _categories(lang)[data.category]
        subject = lang.gettext("%(category)s: %(title)s") % {
            "category": category,
            "title": isolate(title.text, lang.direction),
        }
        draft, _ = self._draft(
            Kind.ANNOUNCEMENT,
            chosen,
            subject,
            {
                "event_id": event.id,
                "city_name": slot("city"),
                "title": title,
                "category": category,
                "body": operator_text(data.body, chosen.languages),
                "published_local": slot("published_local"),
                "link": pick_link(data.link, chosen.languages),
                "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
                "preferences_url": PREFERENCES_PLACEHOLDER,
            },
        )
        return draft


@dataclass(frozen=True)
class DigestEntry:
    """One notice as a digest lists it: its own mail's subject, then its essentials."""

    label: str  # the announcement's category, or "Reminder"
    subject: str
    when: str  # "Due: <local moment>" or "Published <local moment> for <city>."
    paragraphs: Text | None  # the announcement's body, the deadline's description
    link: str | None
    link_label: str


def _digest_entry(
    event: Event, mail: RenderedEmail, city: City, chosen: Choice, lang: Language
) -> DigestEntry:
    """What a digest says of one notice, in the digest's wording (``chosen``)."""
    zone = zone_of(city.timezone)
    if isinstance(event, AnnouncementPublishedEvent):
        data = event.data
        when = lang.gettext("Published %(when)s for %(city)s.") % {
            "when": isolate(local_datetime(data.published_at, zone, chosen.dates), lang.direction),
            "city": isolate(city.name, lang.direction),
        }
        return DigestEntry(
            _categories(lang)[data.category],
            mail.subject,
            when,
            operator_text(data.body, chosen.languages),
            pick_link(data.link, chosen.languages),
            lang.gettext("Read more"),
        )
    reminder = event.data
    when = lang.gettext("%(label)s: %(value)s") % {
        "label": lang.gettext("Due"),
        "value": isolate(local_datetime(reminder.due_at, zone, chosen.dates), lang.direction),
    }
    return DigestEntry(
        lang.gettext("Reminder"),
        mail.subject,
        when,
        operator_text(reminder.description, chosen.languages) if reminder.description else None,
        pick_link(reminder.link, chosen.languages),
        lang.gettext("Open the submission page"),
    )


def render_digest(
    renderer: Renderer,
    city: City,
    items: Sequence[tuple[Event, RenderedEmail]],
    *,
    day: date,
    part: int,
    reference: str,
) -> RenderedEmail:
    """One contact's digest of local ``day`` (``part``: which of that day's digests): the
    notices' own mails (``items``, rendered for the city) listed in the city's wording, and
    every calendar entry they carry attached (one per deadline, the latest revision)."""
    chosen = renderer.choose(city_languages(city))
    lang = chosen.wording
    subject = lang.gettext("GNLC digest for %(city)s – %(date)s") % {
        "city": isolate(city.name, lang.direction),
        "date": day_label(day, chosen.dates),
    }
    if part > 1:
        subject = lang.gettext("%(subject)s (part %(part)s)") % {"subject": subject, "part": part}
    entries = [_digest_entry(event, mail, city, chosen, lang) for event, mail in items]
    attachments: dict[str, Attachment] = {}
    for _, mail in items:
        for attachment in mail.attachments:
            attachments[attachment.filename] = attachment  # a later revision replaces
    announcements = any(mail.optional for _, mail in items)
    text, html = renderer.bodies(
        Kind.DIGEST,
        lang,
        {
            "subject": subject,
            "event_id": reference,
            "city_name": city.name,
            "entries": entries,
            "calendar": bool(attachments),
            "optional": announcements,
            "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
            "preferences_url": PREFERENCES_PLACEHOLDER,
        },
    )
    return RenderedEmail(
        Kind.DIGEST,
        lang.html_lang,
        subject,
        text,
        html,
        tuple(attachments.values()),
        chosen.dates_tag,
        lists_announcements=announcements,
    )


def city_values(event: Event, city: City, dates: Locale) -> dict[str, str]:
    """What differs from city to city once the languages are chosen: name, local times."""
    zone = zone_of(city.timezone)
    if not isinstance(event, AnnouncementPublishedEvent):
        due = event.data.due_at
        return {
            "city": city.name,
            "due_local": local_datetime(due, zone, dates),
            "due_date": local_date(due, zone, dates),
        }
    return {
        "city": city.name,
        "published_local": local_datetime(event.data.published_at, zone, dates),
    }


@cache
def default_renderer() -> Renderer:
    return Renderer()


def render(event: Event, city: City, languages: Sequence[str] | None = None) -> RenderedEmail:
    """``event`` rendered for ``city`` with the packaged templates and catalogs."""
    return default_renderer().render(event, city, languages)
