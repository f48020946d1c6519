from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from gnlc_core.directory import City, load_csv
from gnlc_core.events import (
    AnnouncementPublished,
    Audience,
    DeadlineReminder,
    announcement_event,
    reminder_event,
)
from gnlc_core.settings import SAMPLE_DIRECTORY
from gnlc_email.message import build_message
from gnlc_email.render import pick_text, render

DIRECTORY = load_csv(SAMPLE_DIRECTORY)
DUE = datetime(2027, 1, 17, 12, 0, tzinfo=UTC)


def reminder(offset_seconds: int = -7 * 86400, step: str = "7d-before") -> DeadlineReminder:
    return DeadlineReminder(
        deadline_id="report",
        title={"en": "Biennial progress report", "fr": "Rapport d'étape biennal"},
        description={"en": "Submit it <now> & here."},
        due_at=DUE,
        step=step,
        offset_seconds=offset_seconds,
        audience=Audience(all_members=True),
        link="https://example.org/report?a=1&b=2",
    )


def city(city_id: str) -> City:
    return DIRECTORY.by_id[city_id]


def test_pick_text_falls_back_cleanly() -> None:
    texts = {"en": "E", "fr": "F", "pt-BR": "P"}
    assert pick_text(texts, "fr") == "F"
    assert pick_text(texts, "fr-CA") == "F"
    assert pick_text(texts, "ko") == "E"
    assert pick_text({"es": "S"}, "ko") == "S"


def test_reminder_in_kathmandu_local_time() -> None:
    event = reminder_event(reminder(), fired_at=DUE)
    rendered = render(event, city("kathmandu"))
    # 12:00 UTC is 17:45 in Kathmandu (+05:45)
    assert "Sunday, January 17, 2027, 5:45\u202fPM (GMT+05:45)" in rendered.text
    assert rendered.subject.endswith("is due in 7 days (January 17, 2027)")
    assert rendered.subject.startswith("Reminder: Biennial progress report")


def test_reminder_in_french_city_uses_french_title_and_date() -> None:
    rendered = render(reminder_event(reminder(), fired_at=DUE), city("clermont-ferrand"))
    assert "Rapport d'étape biennal" in rendered.subject
    assert "dimanche 17 janvier 2027" in rendered.text
    assert "13:00 (heure normale d’Europe centrale)" in rendered.text  # UTC+1 in January


def test_overdue_wording() -> None:
    rendered = render(
        reminder_event(reminder(3 * 86400, "3d-overdue"), fired_at=DUE), city("durban")
    )
    assert rendered.subject.startswith("Overdue:")
    assert "was due 3 days ago" in rendered.text


def test_html_is_autoescaped_and_text_is_not() -> None:
    rendered = render(reminder_event(reminder(), fired_at=DUE), city("durban"))
    assert "Submit it &lt;now&gt; &amp; here." in rendered.html
    assert "<now>" not in rendered.html
    assert "Submit it <now> & here." in rendered.text
    assert 'href="https://example.org/report?a=1&amp;b=2"' in rendered.html


def test_unknown_language_falls_back_to_english_dates() -> None:
    kathmandu = city("kathmandu").model_copy(update={"language": "xx"})
    rendered = render(reminder_event(reminder(), fired_at=DUE), kathmandu)
    assert "January" in rendered.text


def test_announcement() -> None:
    event = announcement_event(
        AnnouncementPublished(
            announcement_id="education-day",
            category="event",
            title={"en": "International Day of Education", "es": "Día de la Educación"},
            body={"en": "First paragraph.\n\nSecond paragraph."},
            audience=Audience(all_members=True),
            published_at=DUE,
        )
    )
    rendered = render(event, city("medellin"))
    assert rendered.subject == "Event: Día de la Educación"
    assert rendered.html.count("<p>") >= 2
    assert "Second paragraph." in rendered.text


@pytest.mark.parametrize("city_id", ["aswan", "hangzhou", "suwon", "shiraz"])
def test_mime_message_round_trips_non_ascii(city_id: str) -> None:
    target = city(city_id)
    rendered = render(reminder_event(reminder(), fired_at=DUE), target)
    message = build_message(
        rendered,
        sender="GNLC Secretariat <gnlc@example.org>",
        to_name=target.name,
        to_address=target.contacts[0],
        event_id="evt-1",
        sent_at=DUE,
        message_id_domain="notify.example.org",
        reply_to="secretariat@example.org",
    )
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["To"].addresses[0].display_name == target.name
    assert parsed["Subject"] == rendered.subject
    assert parsed["Message-ID"].endswith("@notify.example.org>")
    assert parsed["X-GNLC-Event-Id"] == "evt-1"
    assert parsed["Reply-To"] == "secretariat@example.org"
    assert "=?utf-8?" in message.as_string() or target.name.isascii()  # RFC 2047 headers
    body = parsed.get_body(("plain",))
    assert body is not None
    plain = body.get_content().replace("\r\n", "\n")
    assert plain == rendered.text
