"""Rendering, pure: an event and a city in, a subject with text and HTML bodies out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_timezone_name
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gnlc_core.directory import City
from gnlc_core.events import AnnouncementPublishedEvent, DeadlineReminderEvent

FALLBACK_LANGUAGE = "en"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("gnlc_email", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def pick_text(texts: dict[str, str], language: str) -> str:
    """The text in ``language``, else its base language, else English, else any."""
    base = language.split("-")[0]
    for candidate in (language, base, FALLBACK_LANGUAGE):
        if candidate in texts:
            return texts[candidate]
    return next(iter(texts.values()))


@cache
def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(FALLBACK_LANGUAGE)


def local_datetime(moment: datetime, city: City) -> str:
    """``moment`` in the city's zone and language, with the zone named:
    ``Sunday, January 17, 2027, 5:45 PM (Nepal Time)``."""
    locale = _locale(city.language)
    local = moment.astimezone(city.zone)
    date = format_date(local, "full", locale=locale)
    time = format_time(local, "short", tzinfo=city.zone, locale=locale)
    zone = get_timezone_name(local, "long", locale=locale)
    return f"{date}, {time} ({zone})"


def _when_phrase(offset_seconds: int) -> str:
    if offset_seconds == 0:
        return "is due today"
    amount = abs(offset_seconds)
    days, rest = divmod(amount, 86400)
    unit = f"{days} day{'s' if days != 1 else ''}" if days and not rest else _short(amount)
    return f"is due in {unit}" if offset_seconds < 0 else f"was due {unit} ago"


def _short(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    if hours and not rest:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def render_reminder(event: DeadlineReminderEvent, city: City) -> RenderedEmail:
    data = event.data
    overdue = data.offset_seconds > 0
    context = {
        "city": city,
        "title": pick_text(data.title, city.language),
        "description": pick_text(data.description, city.language) if data.description else None,
        "due_local": local_datetime(data.due_at, city),
        "due_date": format_date(
            data.due_at.astimezone(city.zone), "long", locale=_locale(city.language)
        ),
        "due_utc": data.due_at.strftime("%Y-%m-%d %H:%M UTC"),
        "when": _when_phrase(data.offset_seconds),
        "overdue": overdue,
        "link": data.link,
        "event_id": event.id,
    }
    env = _environment()
    prefix = "Overdue" if overdue else "Reminder"
    return RenderedEmail(
        subject=f"{prefix}: {context['title']} – {context['when']} ({context['due_date']})",
        text=env.get_template("reminder.txt").render(context),
        html=env.get_template("reminder.html").render(context),
    )


def render_announcement(event: AnnouncementPublishedEvent, city: City) -> RenderedEmail:
    data = event.data
    context = {
        "city": city,
        "title": pick_text(data.title, city.language),
        "body": pick_text(data.body, city.language),
        "category": data.category,
        "published_local": local_datetime(data.published_at, city),
        "link": data.link,
        "event_id": event.id,
    }
    env = _environment()
    return RenderedEmail(
        subject=f"{data.category.capitalize()}: {context['title']}",
        text=env.get_template("announcement.txt").render(context),
        html=env.get_template("announcement.html").render(context),
    )


def render(event: DeadlineReminderEvent | AnnouncementPublishedEvent, city: City) -> RenderedEmail:
    if isinstance(event, DeadlineReminderEvent):
        return render_reminder(event, city)
    return render_announcement(event, city)
