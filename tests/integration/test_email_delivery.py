"""What cities receive, read back from a real SMTP server (aiosmtpd): structure, headers,
encodings, languages, local times in several zones, the calendar entry, and the
unsubscribe flow end to end over the service's real HTTP endpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from icalendar import Calendar

from gnlc_core.events import Audience
from gnlc_core.ledger import Status
from tests.integration.conftest import System
from tests.integration.email_support import (
    DUE,
    announcement,
    by_address,
    caught_up,
    ledger_status,
    publish,
    recipients,
    reminder,
    settle,
)
from tests.support import HTTP

pytestmark = pytest.mark.integration

SENDER = "Secrétariat du GNLC <secretariat@gnlc.example.org>"
REPLY_TO = "GNLC Team <team@gnlc.example.org>"
CITIES = ["kathmandu", "clermont-ferrand", "medellin", "laval", "hangzhou", "aswan"]


def parts(message: EmailMessage) -> tuple[str, str, EmailMessage | None]:
    """(plain text, HTML, calendar part or None), checking the MIME tree on the way."""
    calendar: EmailMessage | None = None
    if message.get_content_type() == "multipart/mixed":
        alternative, attached = message.iter_parts()
        assert isinstance(alternative, EmailMessage)
        assert isinstance(attached, EmailMessage)
        calendar = attached
    else:
        alternative = message
    assert alternative.get_content_type() == "multipart/alternative"
    plain, html = alternative.iter_parts()
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    return plain.get_content().replace("\r\n", "\n"), html.get_content(), calendar


def flat(text: str) -> str:
    """Text with its line breaks undone, to look for phrases the wrapping may have split."""
    return " ".join(text.split())


def test_reminders_arrive_well_formed_in_each_city_language_and_local_time(
    system: System,
) -> None:
    started = datetime.now(UTC).replace(microsecond=0)
    system.service("email", GNLC_MAIL_FROM=SENDER, GNLC_MAIL_REPLY_TO=REPLY_TO).start()
    event = reminder(Audience(cities=tuple(CITIES)))
    publish(system, event)
    settle(system.mailbox, len(CITIES), timeout=90, system=system)
    assert sorted(recipients(system.mailbox).values()) == [1] * len(CITIES)
    mail = by_address(system.mailbox)

    for message in mail.values():
        text, html, calendar = parts(message)
        assert message["From"].addresses[0].display_name == "Secrétariat du GNLC"
        assert message["From"].addresses[0].addr_spec == "secretariat@gnlc.example.org"
        assert str(message["Reply-To"]) == REPLY_TO
        assert message["Message-ID"].endswith("@notify.gnlc.example.org>")
        assert message["X-GNLC-Event-Id"] == event.id
        assert message["Auto-Submitted"] == "auto-generated"
        assert parsedate_to_datetime(message["Date"]) >= started
        assert message["List-Unsubscribe"] is None  # required mail: no unsubscribe
        assert any(
            phrase in flat(text)
            for phrase in (
                "no unsubscribe link",
                "lien de désabonnement",
                "darse de baja",
                "不含退订链接",
                "لا يتضمن رابطًا لإلغاء الاشتراك",
            )
        )
        assert "<style" not in html
        assert 'style="' in html
        # the link's query string survives both encodings
        assert "https://example.org/gnlc/report?year=2027&form=1" in text
        assert 'href="https://example.org/gnlc/report?year=2027&amp;form=1"' in html
        # the calendar entry for the due moment
        assert calendar is not None
        assert calendar.get_content_type() == "text/calendar"
        assert calendar.get_filename() == "progress-report.ics"
        entry = Calendar.from_ical(calendar.get_content())
        [vevent] = entry.walk("VEVENT")
        assert vevent.decoded("DTSTART") == DUE
        assert str(vevent["UID"]).startswith("deadline-progress-report@")  # the deadline alone
        assert entry["METHOD"] == "REQUEST"
        assert vevent.decoded("SEQUENCE") == 0
        # the parser found nothing malformed anywhere
        assert not message.defects
        assert not any(part.defects for part in message.walk())
        assert not any(getattr(message[name], "defects", ()) for name in message)

    kathmandu = parts(mail["lll@kathmandu.example.org"])[0]
    assert mail["lll@kathmandu.example.org"]["Content-Language"] == "en"
    assert mail["lll@kathmandu.example.org"]["Subject"] == (
        "Reminder: Biennial progress report – due in 7 days (January 17, 2027)"
    )
    assert "Due: Sunday, January 17, 2027, 5:45\u202fPM (Nepal Time, GMT+05:45)" in kathmandu
    assert "January 17, 2027, 12:00 UTC" in kathmandu

    paris = mail["ville.apprenante@clermont.example.org"]
    assert paris["Content-Language"] == "fr"
    assert paris["Subject"] == (
        "Rappel\u00a0: Rapport d'étape biennal – échéance dans 7 jours (17 janvier 2027)"
    )
    paris_text, paris_html, paris_ics = parts(paris)
    assert "dimanche 17 janvier 2027, 13:00 (heure normale d’Europe centrale, UTC+01:00)" in (
        paris_text
    )
    assert "Chères et chers collègues de la ville de Clermont-Ferrand," in paris_text
    assert '<html lang="fr" dir="ltr">' in paris_html
    assert paris_ics is not None
    [paris_entry] = Calendar.from_ical(paris_ics.get_content()).walk("VEVENT")
    assert str(paris_entry["SUMMARY"]) == "Échéance\u00a0: Rapport d'étape biennal"

    medellin = mail["aprendizaje@medellin.example.org"]
    assert medellin["Subject"] == (
        "Recordatorio: Informe bienal de progreso – vence en 7 días (17 de enero de 2027)"
    )
    assert (
        "domingo, 17 de enero de 2027, 7:00 (hora estándar de Colombia, GMT-05:00)"
        in (parts(medellin)[0])
    )

    laval = parts(mail["apprendre@laval.example.org"])[0]
    assert "dimanche 17 janvier 2027, 07:00 (heure normale de l’Est nord-américain" in laval

    # Chinese (Simplified) and Arabic: their own wording, dates and direction; the title
    # has no Chinese or Arabic text, so it is the English one, isolated in the Arabic subject
    hangzhou = mail["lifelong@hangzhou.example.org"]
    assert hangzhou["To"].addresses[0].display_name == "杭州 (Hangzhou)"
    assert hangzhou["Content-Language"] == "zh-Hans"
    assert "尊敬的杭州 (Hangzhou)各位同事：" in parts(hangzhou)[0]
    assert "2027年1月17日星期日 20:00（中国标准时间，GMT+08:00）" in parts(hangzhou)[0]
    aswan = mail["lll@aswan.example.org"]
    assert aswan["To"].addresses[0].display_name == "أسوان (Aswan)"
    assert aswan["Content-Language"] == "ar"
    assert aswan["Subject"] == (
        "تذكير: \u2068Biennial progress report\u2069 – يحين الموعد النهائي بعد 7 أيام"
        " (17 يناير 2027)"
    )
    assert (
        "الأحد، 17 يناير 2027، 2:00 م (توقيت شرق أوروبا الرسمي، غرينتش\u200e+02:00)"
        in (parts(aswan)[0])
    )
    assert '<html lang="ar" dir="rtl">' in parts(aswan)[1]

    for address in mail:
        status, attempts, _ = ledger_status(system, event.id, f"{_city_of(address)}:{address}")
        assert (status, attempts) == (Status.DELIVERED, 1)


def _city_of(address: str) -> str:
    return {
        "lll@kathmandu.example.org": "kathmandu",
        "ville.apprenante@clermont.example.org": "clermont-ferrand",
        "aprendizaje@medellin.example.org": "medellin",
        "apprendre@laval.example.org": "laval",
        "lifelong@hangzhou.example.org": "hangzhou",
        "lll@aswan.example.org": "aswan",
    }[address]


def test_one_click_unsubscribe_end_to_end(system: System) -> None:
    email = system.service("email")
    email.env["GNLC_EMAIL_PUBLIC_URL"] = email.url
    email.start()
    first = announcement(Audience(cities=("durban", "medellin")), "education-day")
    publish(system, first)
    settle(system.mailbox, 2, timeout=90)
    durban = by_address(system.mailbox)["focal.point@durban.example.org"]

    # RFC 8058 headers, and the same link in the body
    assert durban["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(durban["List-Unsubscribe"]).strip("<>")
    assert link.startswith(f"{email.url}/unsubscribe?token=")
    text, html, _ = parts(durban)
    assert link in text
    assert link.replace("&", "&amp;") in html

    # GET only asks; it changes nothing
    page = HTTP.get(link, timeout=10)
    assert page.status_code == 200
    assert "focal.point@durban.example.org" in page.text
    assert 'method="post"' in page.text

    # a link somebody altered is refused, with the reason
    token = link.split("token=", 1)[1]
    forged = link.replace(token, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    refused = HTTP.post(forged, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/html")
    assert "bad signature" in refused.text
    assert HTTP.get(forged, timeout=10).status_code == 400
    missing = HTTP.post(f"{email.url}/unsubscribe", timeout=10)
    assert missing.status_code == 400
    assert "the link has no token" in missing.text

    # what a mail client's one-click button sends; twice is the same as once
    for _ in range(2):
        done = HTTP.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=10)
        assert done.status_code == 200
        assert "will no longer receive" in done.text

    # the next announcement skips Durban, reaches Medellín; required mail still reaches both
    second = announcement(Audience(cities=("durban", "medellin")), "workshop")
    required = reminder(Audience(cities=("durban",)), deadline_id="survey")
    publish(system, second, required)
    settle(system.mailbox, 4, timeout=90, system=system)
    assert recipients(system.mailbox) == {
        "focal.point@durban.example.org": 2,  # first announcement and the reminder
        "aprendizaje@medellin.example.org": 2,
    }
    assert ledger_status(system, second.id, "durban:focal.point@durban.example.org")[0] is (
        Status.UNSUBSCRIBED
    )
    assert ledger_status(system, required.id, "durban:focal.point@durban.example.org")[0] is (
        Status.DELIVERED
    )


def test_the_same_event_twice_is_sent_once(system: System) -> None:
    system.service("email").start()
    event = reminder(Audience(cities=("kathmandu", "laval")))
    publish(system, event)
    settle(system.mailbox, 2, timeout=90)
    publish(system, event)  # the scheduler fired it again, or a producer retried
    caught_up(system)  # handled (and committed) the second time too
    assert sorted(recipients(system.mailbox).values()) == [1, 1]
