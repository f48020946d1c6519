"""Rendering: wording, languages and fallbacks, local times and zones, escaping, CSS."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import css_inline
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
from gnlc_email.bidi import Text
from gnlc_email.i18n import LOCALES_DIR, Catalogs
from gnlc_email.render import (
    PREFERENCES_PLACEHOLDER,
    UNSUBSCRIBE_PLACEHOLDER,
    DigestEntry,
    Kind,
    Renderer,
    make_environment,
    pick_text,
    render,
    stylesheet,
)

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


def announcement(
    body: str = "First paragraph.\n\nSecond <b>paragraph</b>.",
) -> AnnouncementPublished:
    return AnnouncementPublished(
        announcement_id="education-day",
        category="event",
        title={"en": "International Day of Education", "es": "Día de la Educación"},
        body={"en": body},
        audience=Audience(all_members=True),
        published_at=DUE,
    )


def city(city_id: str, **changes: str) -> City:
    found = DIRECTORY.by_id[city_id]
    return found.model_copy(update=changes) if changes else found


def test_pick_text_falls_back_cleanly() -> None:
    texts = {"en": "E", "fr": "F", "pt-BR": "P"}
    assert pick_text(texts, "fr") == "F"
    assert pick_text(texts, "fr-CA") == "F"
    assert pick_text(texts, "ko") == "E"
    assert pick_text({"es": "S"}, "ko") == "S"


@pytest.mark.parametrize(
    ("wanted", "catalog"),
    [
        ("fr", "fr"),
        ("fr-CA", "fr"),
        ("es-MX", "es"),
        ("pt-BR", "pt"),
        ("pt-PT", "pt"),
        ("ar-MA", "ar"),
        ("ko-KR", "ko"),
        ("ru", "ru"),
        # Chinese: Simplified readers get the zh_Hans catalog, Traditional ones do not
        ("zh", "zh_Hans"),
        ("zh-CN", "zh_Hans"),
        ("zh-SG", "zh_Hans"),
        ("zh-Hans-HK", "zh_Hans"),
        ("zh-TW", "en"),
        ("zh-HK", "en"),
        ("zh-Hant", "en"),
        ("ja", "en"),
        ("xx", "en"),
    ],
)
def test_catalog_choice_exact_then_same_language_and_script_then_english(
    wanted: str, catalog: str
) -> None:
    assert Catalogs().choose(wanted) == catalog


@pytest.mark.parametrize(
    ("city_id", "changes", "expected"),
    [
        # 12:00 UTC is 17:45 in Kathmandu (+05:45): a zone with no name of its own is named
        # after its place
        ("kathmandu", {}, "Sunday, January 17, 2027, 5:45\u202fPM (Nepal Time, GMT+05:45)"),
        (
            "kathmandu",
            {"timezone": "America/St_Johns"},
            "Sunday, January 17, 2027, 8:30\u202fAM (Newfoundland Standard Time, GMT-03:30)",
        ),
        (
            "kathmandu",
            {"timezone": "Pacific/Chatham"},  # the next day there, in summer time
            "Monday, January 18, 2027, 1:45\u202fAM (Chatham Daylight Time, GMT+13:45)",
        ),
        (
            "clermont-ferrand",
            {},
            "dimanche 17 janvier 2027, 13:00 (heure normale d’Europe centrale, UTC+01:00)",
        ),
        (
            "medellin",
            {},
            "domingo, 17 de enero de 2027, 7:00 (hora estándar de Colombia, GMT-05:00)",
        ),
        (
            "laval",
            {},
            "dimanche 17 janvier 2027, 07:00 (heure normale de l’Est nord-américain, UTC-05:00)",
        ),
    ],
)
def test_due_moment_in_local_time_and_language_with_the_zone_named(
    city_id: str, changes: dict[str, str], expected: str
) -> None:
    rendered = render(reminder_event(reminder(), fired_at=DUE), city(city_id, **changes))
    assert expected in rendered.text
    assert expected in rendered.html
    assert "January 17, 2027, 12:00 UTC" in rendered.text or "2027, 12:00 UTC" in rendered.text


def test_reminder_subject_says_what_and_when() -> None:
    rendered = render(reminder_event(reminder(), fired_at=DUE), city("kathmandu"))
    assert rendered.kind is Kind.DEADLINE_REMINDER
    assert rendered.subject == (
        "Reminder: Biennial progress report – due in 7 days (January 17, 2027)"
    )
    assert rendered.language == "en"


def test_reminder_subject_date_is_the_local_date() -> None:
    late = reminder().model_copy(update={"due_at": datetime(2027, 1, 17, 20, 0, tzinfo=UTC)})
    rendered = render(reminder_event(late, fired_at=DUE), city("kathmandu"))
    assert rendered.subject.endswith("(January 18, 2027)")  # 01:45 the next day there


def test_french_city_gets_french_wording_title_and_dates() -> None:
    rendered = render(reminder_event(reminder(), fired_at=DUE), city("clermont-ferrand"))
    assert rendered.language == "fr"
    assert rendered.subject == (
        "Rappel\u00a0: Rapport d'étape biennal – échéance dans 7 jours (17 janvier 2027)"
    )
    assert "Chères et chers collègues de la ville de Clermont-Ferrand," in rendered.text
    assert "dimanche 17 janvier 2027" in rendered.text
    assert "message obligatoire" in rendered.text
    assert '<html lang="fr" dir="ltr">' in rendered.html


def test_spanish_city_gets_spanish_wording_and_english_title_when_no_spanish_one() -> None:
    rendered = render(
        reminder_event(reminder(3 * 86400, "3d-overdue"), fired_at=DUE), city("medellin")
    )
    assert rendered.kind is Kind.OVERDUE_REMINDER
    assert rendered.subject == ("Vencido: Biennial progress report – venció el 17 de enero de 2027")
    assert "Venció hace 3 días." in rendered.text
    assert "Estimadas y estimados colegas de Medellín:" in rendered.text


def test_language_without_catalog_gets_english_wording_and_its_own_dates() -> None:
    """Japanese has no catalog: the wording follows the chain to English, the dates stay
    Japanese (CLDR has them), each isolated in the English sentence with its language."""
    rendered = render(reminder_event(reminder(), fired_at=DUE), city("okayama"))
    assert rendered.language == "en"
    assert rendered.dates_language == "ja"
    assert "Dear colleagues in 岡山市 (Okayama)," in rendered.text
    assert "Due: 2027年1月17日日曜日 21:00（日本標準時、GMT+09:00）" in rendered.text
    assert rendered.subject.endswith("due in 7 days (2027年1月17日)")
    assert '<bdi lang="ja" dir="ltr">2027年1月17日日曜日 21:00' in rendered.html


def test_overdue_wording_and_no_calendar_entry() -> None:
    rendered = render(
        reminder_event(reminder(3 * 86400, "3d-overdue"), fired_at=DUE), city("durban")
    )
    assert rendered.subject == "Overdue: Biennial progress report – was due January 17, 2027"
    assert "Was due 3 days ago." in rendered.text
    assert "We have not received your city's submission yet." in rendered.text
    assert rendered.attachments == ()


@pytest.mark.parametrize(
    ("offset", "step", "phrase"),
    [
        (0, "due", "Due now."),
        (-3600, "1h-before", "Due in 1 hour."),
        (-90, "90s-before", "Due in 1 minute."),
    ],
)
def test_spans(offset: int, step: str, phrase: str) -> None:
    rendered = render(reminder_event(reminder(offset, step), fired_at=DUE), city("durban"))
    assert phrase in rendered.text


def test_deadline_reminders_are_required_mail_and_say_why_there_is_no_unsubscribe() -> None:
    rendered = render(reminder_event(reminder(), fired_at=DUE), city("durban"))
    assert not rendered.optional
    assert "required mail" in rendered.text
    assert "no unsubscribe link" in rendered.html
    assert UNSUBSCRIBE_PLACEHOLDER not in rendered.text
    [ics] = rendered.attachments
    assert ics.filename == "report.ics"
    assert ics.content_type.startswith("text/calendar")


def test_html_is_autoescaped_and_text_is_not() -> None:
    rendered = render(reminder_event(reminder(), fired_at=DUE), city("durban"))
    assert "Submit it &lt;now&gt; &amp; here." in rendered.html
    assert "<now>" not in rendered.html
    assert "Submit it <now> & here." in rendered.text
    assert 'href="https://example.org/report?a=1&amp;b=2"' in rendered.html


def test_city_names_are_escaped_in_html() -> None:
    rendered = render(
        reminder_event(reminder(), fired_at=DUE), city("durban", name="<script>x</script>")
    )
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;x&lt;/script&gt;" in rendered.html
    assert "Dear colleagues in <script>x</script>," in rendered.text


def test_announcement_is_optional_mail_with_an_unsubscribe_link_per_recipient() -> None:
    event = announcement_event(announcement())
    rendered = render(event, city("medellin"))
    assert rendered.optional
    assert rendered.subject == "Evento: Día de la Educación"
    assert "<p>Second &lt;b&gt;paragraph&lt;/b&gt;.</p>" in re.sub(
        r"<p[^>]*>", "<p>", rendered.html
    )
    personal = rendered.for_recipient(
        "https://x.example/unsubscribe?token=a&b",
        preferences_url="https://x.example/preferences?token=c&d",
    )
    assert "https://x.example/unsubscribe?token=a&b" in personal.text
    assert 'href="https://x.example/unsubscribe?token=a&amp;b"' in personal.html
    assert "https://x.example/preferences?token=c&d" in personal.text
    assert 'href="https://x.example/preferences?token=c&amp;d"' in personal.html
    for placeholder in (UNSUBSCRIBE_PLACEHOLDER, PREFERENCES_PLACEHOLDER):
        assert placeholder not in personal.html + personal.text


def test_css_is_inlined_and_mail_reads_without_images() -> None:
    rendered = render(reminder_event(reminder(), fired_at=DUE), city("durban"))
    assert "<style" not in rendered.html
    assert 'style="' in rendered.html
    assert "<img" not in rendered.html


class _Tokens(HTMLParser):
    """The document as a list of (tag, attributes) and text, for structural comparison."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[object] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tokens.append((tag, sorted((k, " ".join((v or "").split())) for k, v in attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.tokens.append(f"/{tag}")

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.tokens.append(" ".join(data.split()))


def _structure(html: str) -> list[object]:
    parser = _Tokens()
    parser.feed(html)
    return parser.tokens


@pytest.mark.parametrize("kind", list(Kind))
def test_inlining_at_load_time_equals_inlining_each_message(kind: Kind) -> None:
    """The CSS is inlined into the template source once; that must give what inlining
    every rendered message would."""
    catalogs = Catalogs()
    for city_id in ("kathmandu", "clermont-ferrand", "aswan", "hangzhou", "suwon"):
        target = city(city_id)
        lang = catalogs.language(target.language)
        css = stylesheet(lang)
        context = {
            "language": lang,
            "subject": "S & <s>",
            "event_id": "e-1",
            "city_name": target.name,
            "title": Text("T <t>", "en"),
            "status": "Due in 7 days.",
            "due_local": "L",
            "due_utc": "U",
            "dates_lang": None,
            "dates_dir": None,
            "description": Text("D & d\n\nE", "ar"),
            "link": "https://example.org/?a=1&b=2",
            "category": "Event",
            "body": Text("one\ntwo <2>\n\nthree", "fr"),
            "published_local": "P",
            "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
            "preferences_url": PREFERENCES_PLACEHOLDER,
            "calendar_note": "N",
            "cancelled": False,
            "entries": [
                DigestEntry("Event", "S <1>", "W", Text("a & b\n\nc", "ar"), "https://x/?a&b", "L"),
                DigestEntry("Reminder", "S 2", "W", None, None, "L"),
            ],
            "calendar": True,
            "optional": True,
        }
        name = f"{kind.template}.html"
        at_load = make_environment(lang).get_template(name).render(context)
        raw = make_environment(lang, inline=False).get_template(name).render(context)
        per_message = css_inline.CSSInliner(extra_css=css).inline(raw)
        assert _structure(at_load) == _structure(per_message)


def test_render_many_equals_rendering_each_city_alone() -> None:
    renderer = Renderer()
    cities = list(DIRECTORY)
    for event in (
        reminder_event(reminder(), fired_at=DUE),
        reminder_event(reminder(3 * 86400, "3d-overdue"), fired_at=DUE),
        announcement_event(announcement()),
    ):
        together = renderer.render_many(event, cities)
        alone = [Renderer().render(event, c) for c in cities]
        assert together == alone


def test_a_new_language_is_a_new_catalog_and_persian_reads_right_to_left(tmp_path: Path) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(LOCALES_DIR, locales)
    target = locales / "fa" / "LC_MESSAGES"
    target.mkdir(parents=True)
    template = (LOCALES_DIR / "messages.pot").read_text()
    brand = 'msgid "UNESCO Global Network of Learning Cities"\nmsgstr '
    template = template.replace(brand + '""', brand + '"شبکه جهانی شهرهای یادگیرنده یونسکو"')
    (target / "messages.po").write_text(
        'msgid ""\nmsgstr ""\n"Language: fa\\n"\n"Content-Type: text/plain; charset=utf-8\\n"\n'
        + template
    )
    renderer = Renderer(Catalogs(locales))
    rendered = renderer.render(reminder_event(reminder(), fired_at=DUE), city("shiraz"))
    assert rendered.language == "fa"
    assert '<html lang="fa" dir="rtl">' in rendered.html
    assert 'dir="rtl"' in rendered.html.split("<body", 1)[1]
    assert "شبکه جهانی شهرهای یادگیرنده یونسکو" in rendered.text
    assert "ژانویه" in rendered.text  # January, in Persian: dates follow the chain
    # untranslated strings fall back to English, never to an empty string
    assert "Reference: " in rendered.text
