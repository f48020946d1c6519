"""An announcement's email as a city gets it, in a language the operator picks: rendered
here by the email service's own renderer (``gnlc_email.preview``; the email service has no
preview API), from the announcement the scheduler stores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

from gnlc_core.directory import City
from gnlc_core.events import AnnouncementPublished, announcement_event
from gnlc_core.settings import Settings
from gnlc_email.preview import preview_files

#: The languages an operator may pick (those with a catalog); "" is the city's own chain.
LANGUAGES = ("ar", "en", "es", "fr", "ko", "pt", "ru", "zh")


@dataclass(frozen=True)
class Preview:
    html: str
    text: str
    subject: str


def announcement_preview(
    stored: Mapping[str, Any], city: City, language: str, settings: Settings
) -> Preview:
    """The mail ``city`` gets for the stored announcement, in ``language`` then the city's
    chain (or the city's chain alone when ``language`` is empty)."""
    published = stored.get("published_at") or stored.get("publish_at")
    event = announcement_event(
        AnnouncementPublished(
            announcement_id=stored["id"],
            category=stored["category"],
            title=stored["title"],
            body=stored["body"],
            audience=stored["audience"],
            published_at=datetime.fromisoformat(published) if published else datetime.now(UTC),
            link=stored.get("link"),
        )
    )
    chain = None
    if language:
        own = city.languages or (city.language,)
        chain = [language, *(lang for lang in own if lang != language)]
    files = preview_files(event, city, settings, languages=chain)
    subject = str(message_from_bytes(files[".eml"], policy=policy.default)["subject"])
    return Preview(files[".html"].decode(), files[".txt"].decode(), subject)
