"""The preference page end to end, on the real broker and SMTP server: a contact follows the
link found in a real mail, turns a category off, and the next announcement of that category
is dropped with the reason while one of another category still arrives."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from gnlc_core.events import (
    AnnouncementPublished,
    AnnouncementPublishedEvent,
    Audience,
    announcement_event,
)
from gnlc_core.ledger import Status
from gnlc_email.choices import CATEGORIES
from tests.integration.conftest import System
from tests.integration.email_support import (
    DUE,
    by_address,
    ledger_status,
    publish,
    reminder,
    wait_for_status,
)
from tests.integration.test_email_delivery import parts
from tests.support import HTTP

pytestmark = pytest.mark.integration

DURBAN = "durban:focal.point@durban.example.org"
ADDRESS = "focal.point@durban.example.org"
ONLY_DURBAN = Audience(cities=("durban",))


def news(announcement_id: str, category: str) -> AnnouncementPublishedEvent:
    return announcement_event(
        AnnouncementPublished.model_validate(
            {
                "announcement_id": announcement_id,
                "category": category,
                "title": {"en": f"About {announcement_id}"},
                "body": {"en": "Details at the link below."},
                "audience": ONLY_DURBAN,
                "published_at": DUE,
                "link": "https://example.org/gnlc/news",
            }
        )
    )


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_category_turned_off_on_the_page_drops_the_next_announcement_of_it(
    system: System,
) -> None:
    email = system.service("email")
    email.env["GNLC_EMAIL_PUBLIC_URL"] = email.url
    email.start()
    first = news("education-day", "event")
    publish(system, first)
    assert wait_for_status(system, first.id, DURBAN, Status.DELIVERED) is Status.DELIVERED
    assert system.mailbox.wait_for(1, timeout=30)
    mail = by_address(system.mailbox)[ADDRESS]

    # the link is in both bodies, beside the one-click unsubscribe (which stays as it is)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(mail["List-Unsubscribe"]).startswith(f"<{email.url}/unsubscribe?token=")
    text, html, _ = parts(mail)
    found = re.search(rf"{re.escape(email.url)}/preferences\?token=[\w.%-]+", text)
    assert found is not None, text
    link = found.group(0)
    assert link in html
    token = link.split("token=", 1)[1]
    assert token not in str(mail["List-Unsubscribe"])  # a token of its own purpose

    page = HTTP.get(link, timeout=10)
    assert page.status_code == 200
    assert ADDRESS in page.text
    assert page.text.count('name="category"') == len(CATEGORIES)

    wanted = [c for c in CATEGORIES if c != "event"]
    form = [("token", parse_qs(urlsplit(link).query)["token"][0]), ("subscribed", "on")]
    form += [("category", c) for c in wanted]
    # a form posted from another site changes nothing
    refused = HTTP.post(
        f"{email.url}/preferences",
        data=dict(form[:2]),
        headers={"origin": "https://elsewhere.example", "sec-fetch-site": "cross-site"},
        timeout=10,
    )
    assert refused.status_code == 403
    saved = HTTP.post(
        f"{email.url}/preferences",
        content=urlencode(form),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "origin": email.url,
            "sec-fetch-site": "same-origin",
        },
        timeout=10,
    )
    assert saved.status_code == 200, saved.text
    assert "Your preferences are saved" in saved.text

    # the next event is dropped with the reason; news and a reminder still arrive
    workshop_day = news("mayors-forum", "event")
    newsletter = news("newsletter", "news")
    required = reminder(ONLY_DURBAN, deadline_id="survey")
    publish(system, workshop_day, newsletter, required)
    assert wait_for_status(system, workshop_day.id, DURBAN, Status.DROPPED) is Status.DROPPED
    assert ledger_status(system, workshop_day.id, DURBAN)[2] == "category off: event"
    assert wait_for_status(system, newsletter.id, DURBAN, Status.DELIVERED) is Status.DELIVERED
    assert wait_for_status(system, required.id, DURBAN, Status.DELIVERED) is Status.DELIVERED
    assert system.mailbox.wait_for(3, timeout=30)
    subjects = sorted(str(m["Subject"]) for m in system.mailbox.messages)
    assert len(subjects) == 3
    assert not any("mayors-forum" in s for s in subjects)
    assert any("newsletter" in s for s in subjects)
