"""MIME assembly: what ``compose`` writes, read back by the standard library's parser."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from gnlc_core.directory import load_csv
from gnlc_core.events import (
    AnnouncementPublished,
    Audience,
    DeadlineReminder,
    announcement_event,
    reminder_event,
)
from gnlc_core.settings import SAMPLE_DIRECTORY
from gnlc_email.message import EVENT_ID_HEADER, Recipient, compose, header, message_id
from gnlc_email.render import RenderedEmail, render

DIRECTORY = load_csv(SAMPLE_DIRECTORY)
DUE = datetime(2027, 1, 17, 12, 0, tzinfo=UTC)
SENT = datetime(2027, 1, 10, 3, 15, tzinfo=UTC)
REMINDER = reminder_event(
    DeadlineReminder(
        deadline_id="report",
        title={"en": "Biennial progress report", "fr": "Rapport d'étape biennal"},
        due_at=DUE,
        step="7d-before",
        offset_seconds=-7 * 86400,
        audience=Audience(all_members=True),
        link="https://example.org/report",
    ),
    fired_at=SENT,
)
ANNOUNCEMENT = announcement_event(
    AnnouncementPublished(
        announcement_id="education-day",
        category="event",
        title={"en": "International Day of Education"},
        body={"en": "Join us.\n\n.A line starting with a dot, and trailing space "},
        audience=Audience(all_members=True),
        published_at=DUE,
    )
)


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def compose_for(
    city_id: str, rendered: RenderedEmail | None = None, **kwargs: Any
) -> tuple[RenderedEmail, bytes]:
    city = DIRECTORY.by_id[city_id]
    rendered = rendered or render(REMINDER, city)
    raw = compose(
        rendered,
        sender="GNLC Secretariat <gnlc@example.org>",
        recipient=Recipient(city.name, city.contacts[0], f"{city.id}:{city.contacts[0]}"),
        event_id="evt-1",
        sent_at=SENT,
        message_id_domain="notify.example.org",
        **kwargs,
    )
    return rendered, raw


@pytest.mark.parametrize("city_id", ["aswan", "hangzhou", "suwon", "shiraz", "hue", "durban"])
def test_reminder_structure_headers_and_encodings_round_trip(city_id: str) -> None:
    city = DIRECTORY.by_id[city_id]
    rendered, raw = compose_for(city_id, reply_to="Secrétariat <secretariat@example.org>")
    message = parse(raw)
    assert message.get_content_type() == "multipart/mixed"
    alternative, calendar = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_filename() == "report.ics"
    assert calendar.get_content_disposition() == "attachment"
    assert calendar.get_param("method") == "REQUEST"
    personal = rendered.for_recipient(None, (city.contacts[0], city.name))
    assert calendar.get_content().encode() == personal.attachments[0].data
    unfolded = personal.attachments[0].data.replace(b"\r\n ", b"")
    assert f"mailto:{city.contacts[0]}".encode() in unfolded

    assert message["To"].addresses[0].display_name == city.name
    assert message["To"].addresses[0].addr_spec == city.contacts[0]
    assert message["From"].addresses[0].addr_spec == "gnlc@example.org"
    assert message["Reply-To"].addresses[0].display_name == "Secrétariat"
    assert message["Subject"] == rendered.subject
    assert message["Date"].datetime == SENT
    assert message["Message-ID"] == message_id(
        "evt-1", f"{city.id}:{city.contacts[0]}", "notify.example.org"
    )
    assert message["MIME-Version"] == "1.0"
    assert message["Content-Language"] == rendered.language
    assert message["Auto-Submitted"] == "auto-generated"
    assert message[EVENT_ID_HEADER] == "evt-1"
    assert message["List-Unsubscribe"] is None  # required mail

    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html + "\n" * (
        not rendered.html.endswith("\n")
    )


def test_lines_are_crlf_short_and_headers_ascii() -> None:
    _, raw = compose_for("aswan")
    head, _, _body = raw.partition(b"\r\n\r\n")
    assert head.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))


def test_non_ascii_subject_and_names_are_rfc2047_encoded() -> None:
    _, raw = compose_for("hangzhou")
    assert b"=?utf-8?" in raw.partition(b"\r\n\r\n")[0]
    assert "杭州" not in raw.decode("ascii")


def test_cjk_bodies_use_base64_and_latin_bodies_quoted_printable() -> None:
    _, latin = compose_for("durban")
    assert b"Content-Transfer-Encoding: quoted-printable" in latin
    rendered = render(REMINDER, DIRECTORY.by_id["hangzhou"])
    chinese = RenderedEmail(
        rendered.kind, "zh", "截止日期提醒", "进度报告截止日期提醒。" * 40, "<p>进度报告</p>" * 40
    )
    _, raw = compose_for("hangzhou", chinese)
    assert b"Content-Transfer-Encoding: base64" in raw
    assert parse(raw).get_body(("plain",)).get_content().startswith("进度报告")  # type: ignore[union-attr]


def test_message_id_is_the_same_for_the_same_notice_and_differs_between_notices() -> None:
    assert message_id("e", "r", "d") == message_id("e", "r", "d")
    assert message_id("e", "r", "d") != message_id("e", "r2", "d")
    assert message_id("e", "r", "d") != message_id("e2", "r", "d")


def test_announcement_carries_one_click_unsubscribe() -> None:
    city = DIRECTORY.by_id["durban"]
    url = "https://notify.example.org/unsubscribe?token=abc.def"
    _rendered, raw = compose_for("durban", render(ANNOUNCEMENT, city), unsubscribe_url=url)
    message = parse(raw)
    assert message.get_content_type() == "multipart/alternative"
    assert message["List-Unsubscribe"] == f"<{url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = message.get_body(("plain",))
    assert plain is not None
    text = plain.get_content()
    assert url in text
    assert "\n.A line starting with a dot" in text.replace("\r\n", "\n")


def test_long_ascii_subject_is_folded_and_reads_back_the_same() -> None:
    subject = "Reminder: " + "a very long deadline title " * 8
    line = header("Subject", subject)
    assert all(len(part) <= 78 for part in line.split("\r\n"))
    parsed = parse((line + "\r\n").encode())
    assert parsed["Subject"] == subject


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        (
            "أسوان (Aswan)",
            "تذكير: \u2068Biennial progress report\u2069 – يحين الموعد النهائي بعد يومين",
        ),
        ("杭州", "提醒：两年期进展报告 – 距截止还有21天（2027年1月17日）" * 3),
        ("수원시", "알림: 격년 진행 보고서 – 마감까지 21일 (2027년 1월 17일)"),
        ("Казань", "Напоминание: Двухгодичный доклад о ходе работы – срок истекает через 21 день"),
        ("Sorocaba", "Lembrete: Relatório bienal de progresso – o prazo termina em 2 dias"),
    ],
)
def test_subjects_and_names_in_every_script_decode_to_the_same_text(
    name: str, subject: str
) -> None:
    rendered = RenderedEmail(
        render(REMINDER, DIRECTORY.by_id["durban"]).kind, "x", subject, "t", "h"
    )
    raw = compose(
        rendered,
        sender="Секретариат ГСОГ <gnlc@example.org>",
        recipient=Recipient(name, "a@example.org", "c:a@example.org"),
        event_id="evt-1",
        sent_at=SENT,
        message_id_domain="notify.example.org",
    )
    head = raw.partition(b"\r\n\r\n")[0]
    assert head.isascii()
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    message = parse(raw)
    assert message["Subject"] == subject
    assert message["To"].addresses[0].display_name == name
    assert message["From"].addresses[0].display_name == "Секретариат ГСОГ"
    assert not message.defects
