"""Previews: any template for any city and language, as the ``.eml`` a recipient would
get and its ``.html`` and ``.txt`` parts, so an operator can look before publishing.
(``gnlc-notify preview``.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gnlc_core.directory import City
from gnlc_core.events import (
    AnnouncementPublished,
    Audience,
    DeadlineReminder,
    announcement_event,
    reminder_event,
)
from gnlc_core.settings import Settings
from gnlc_email.message import Recipient, compose
from gnlc_email.render import Event, Kind, Renderer
from gnlc_email.unsubscribe import Subscriber, Tokens, unsubscribe_url

PREVIEW_SECRET = "preview only: this link does not work"  # noqa: S105 - not a secret


def sample_event(kind: Kind, now: datetime) -> Event:
    """A plausible event of each kind, in English, French and Spanish."""
    if kind is Kind.ANNOUNCEMENT:
        return announcement_event(
            AnnouncementPublished(
                announcement_id="preview-education-day",
                category="event",
                title={
                    "en": "International Day of Education",
                    "fr": "Journée internationale de l'éducation",
                    "es": "Día Internacional de la Educación",
                },
                body={
                    "en": "Join us on 24 January.\n\nProgrammes and registration at the link "
                    "below.",
                    "fr": "Rejoignez-nous le 24 janvier.\n\nProgramme et inscription au lien "
                    "ci-dessous.",
                    "es": "Acompáñenos el 24 de enero.\n\nProgramas e inscripción en el "
                    "enlace de abajo.",
                },
                audience=Audience(all_members=True),
                published_at=now,
                link="https://example.org/gnlc/education-day",
            )
        )
    overdue = kind is Kind.OVERDUE_REMINDER
    offset = 3 * 86400 if overdue else -7 * 86400
    due = (now - timedelta(seconds=offset)).replace(second=0, microsecond=0)
    return reminder_event(
        DeadlineReminder(
            deadline_id="preview-progress-report",
            title={
                "en": "Biennial progress report",
                "fr": "Rapport d'étape biennal",
                "es": "Informe bienal de progreso",
            },
            description={
                "en": "Please submit your city's biennial progress report.",
                "fr": "Merci de soumettre le rapport d'étape biennal de votre ville.",
                "es": "Envíe el informe bienal de progreso de su ciudad.",
            },
            due_at=due,
            step="3d-overdue" if overdue else "7d-before",
            offset_seconds=offset,
            audience=Audience(all_members=True),
            link="https://example.org/gnlc/report",
        ),
        fired_at=now,
    )


def kind_of(event: Event) -> Kind:
    if event.type == "announcement.published":
        return Kind.ANNOUNCEMENT
    if event.data.offset_seconds > 0:
        return Kind.OVERDUE_REMINDER
    return Kind.DEADLINE_REMINDER


def preview_files(
    event: Event, city: City, settings: Settings, *, now: datetime | None = None
) -> dict[str, bytes]:
    """``{".eml": ..., ".html": ..., ".txt": ...}`` for the city's first contact."""
    rendered = Renderer(domain=settings.message_id_domain).render(event, city)
    address = city.contacts[0]
    url = None
    if rendered.optional:
        token = Tokens([PREVIEW_SECRET]).sign(Subscriber(address, city.id, rendered.language))
        url = unsubscribe_url(settings.email_public_url, token)
    personal = rendered.for_recipient(url)
    eml = compose(
        rendered,
        sender=settings.mail_from,
        recipient=Recipient(city.name, address, f"{city.id}:{address}"),
        event_id=event.id,
        sent_at=now or datetime.now(UTC),
        message_id_domain=settings.message_id_domain,
        reply_to=settings.mail_reply_to,
        unsubscribe_url=url,
    )
    return {".eml": eml, ".html": personal.html.encode(), ".txt": personal.text.encode()}


def write_preview(files: dict[str, bytes], directory: Path, stem: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, data in files.items():
        path = directory / f"{stem}{suffix}"
        path.write_bytes(data)
        written.append(path)
    return written
