"""Every language of the catalogs as a city reads it: counts in the right plural form,
dates with their week day, month and zone, and a whole reminder per language (``lang`` and
``dir``, translated wording, the local date with its zone, the plural for 1, 2, 5 and 21
days, a subject that decodes back from the MIME). Plus the fallback chains and the
direction of operator texts (issue 16's Arabic title in an English mail)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from gnlc_core.directory import City
from gnlc_core.events import Audience, DeadlineReminder, DeadlineReminderEvent, reminder_event
from gnlc_email.bidi import FSI, PDI, Text, first_strong, isolate
from gnlc_email.dates import days, hours, local_date, local_datetime, minutes
from gnlc_email.i18n import Catalogs, Direction, chain, dates_locale
from gnlc_email.message import Recipient, compose
from gnlc_email.preview import SAMPLE_NOW, SAMPLES, Sample, sample_event
from gnlc_email.render import Kind, Renderer, city_languages, pick_language

CATALOGS = Catalogs()
BY_NAME = {sample.name: sample for sample in SAMPLES}
COUNTS = (0, 1, 2, 3, 5, 11, 21, 100, 101)

DAYS = {
    "ar": (
        "0 يوم",
        "يوم واحد",
        "يومين",
        "3 أيام",
        "5 أيام",
        "11 يومًا",
        "21 يومًا",
        "100 يوم",
        "101 يوم",
    ),
    "en": (
        "0 days",
        "1 day",
        "2 days",
        "3 days",
        "5 days",
        "11 days",
        "21 days",
        "100 days",
        "101 days",
    ),
    "es": (
        "0 días",
        "1 día",
        "2 días",
        "3 días",
        "5 días",
        "11 días",
        "21 días",
        "100 días",
        "101 días",
    ),
    "fr": (
        "0 jour",
        "1 jour",
        "2 jours",
        "3 jours",
        "5 jours",
        "11 jours",
        "21 jours",
        "100 jours",
        "101 jours",
    ),
    "ru": (
        "0 дней",
        "1 день",
        "2 дня",
        "3 дня",
        "5 дней",
        "11 дней",
        "21 день",
        "100 дней",
        "101 день",
    ),
    "zh": ("0天", "1天", "2天", "3天", "5天", "11天", "21天", "100天", "101天"),
    "pt": (
        "0 dia",
        "1 dia",
        "2 dias",
        "3 dias",
        "5 dias",
        "11 dias",
        "21 dias",
        "100 dias",
        "101 dias",
    ),
    "ko": ("0일", "1일", "2일", "3일", "5일", "11일", "21일", "100일", "101일"),
}
HOURS = {
    "ar": (
        "0 ساعة",
        "ساعة واحدة",
        "ساعتين",
        "3 ساعات",
        "5 ساعات",
        "11 ساعةً",
        "21 ساعةً",
        "100 ساعة",
        "101 ساعة",
    ),
    "ru": (
        "0 часов",
        "1 час",
        "2 часа",
        "3 часа",
        "5 часов",
        "11 часов",
        "21 час",
        "100 часов",
        "101 час",
    ),
    "zh": ("0小时", "1小时", "2小时", "3小时", "5小时", "11小时", "21小时", "100小时", "101小时"),
}
MINUTES = {
    # after "через" / "назад" Russian takes the accusative: 1 минуту, 21 минуту
    "ru": (
        "0 минут",
        "1 минуту",
        "2 минуты",
        "3 минуты",
        "5 минут",
        "11 минут",
        "21 минуту",
        "100 минут",
        "101 минуту",
    ),
    "ar": (
        "0 دقيقة",
        "دقيقة واحدة",
        "دقيقتين",
        "3 دقائق",
        "5 دقائق",
        "11 دقيقةً",
        "21 دقيقةً",
        "100 دقيقة",
        "101 دقيقة",
    ),
    "ko": ("0분", "1분", "2분", "3분", "5분", "11분", "21분", "100분", "101분"),
}


@pytest.mark.parametrize(("language", "expected"), DAYS.items())
def test_days_in_every_language(language: str, expected: tuple[str, ...]) -> None:
    lang = CATALOGS.language(language)
    assert tuple(days(n, lang) for n in COUNTS) == expected


@pytest.mark.parametrize(("language", "expected"), HOURS.items())
def test_hours(language: str, expected: tuple[str, ...]) -> None:
    lang = CATALOGS.language(language)
    assert tuple(hours(n, lang) for n in COUNTS) == expected


@pytest.mark.parametrize(("language", "expected"), MINUTES.items())
def test_minutes(language: str, expected: tuple[str, ...]) -> None:
    lang = CATALOGS.language(language)
    assert tuple(minutes(n, lang) for n in COUNTS) == expected


def test_numbers_are_written_as_the_language_writes_them() -> None:
    assert days(1500, CATALOGS.language("en")) == "1,500 days"
    assert days(1500, CATALOGS.language("fr")) == "1\u202f500 jours"
    assert days(1500, CATALOGS.language("ru")) == "1\xa0500 дней"


MOMENTS = (
    datetime(2027, 1, 17, 12, tzinfo=UTC),  # a Sunday in January
    datetime(2027, 3, 1, 12, tzinfo=UTC),  # a Monday in March (Ramadan time in Morocco)
    datetime(2027, 12, 31, 12, tzinfo=UTC),  # a Friday in December
)
DATES = {
    "ar": (
        "الأحد، 17 يناير 2027، 1:00 م (توقيت المغرب، غرينتش\u200e+01:00)",
        "الاثنين، 1 مارس 2027، 12:00 م (توقيت المغرب، غرينتش\u200e+00:00)",
        "الجمعة، 31 ديسمبر 2027، 1:00 م (توقيت المغرب، غرينتش\u200e+01:00)",
    ),
    "en": (
        "Sunday, January 17, 2027, 5:45\u202fPM (Nepal Time, GMT+05:45)",
        "Monday, March 1, 2027, 5:45\u202fPM (Nepal Time, GMT+05:45)",
        "Friday, December 31, 2027, 5:45\u202fPM (Nepal Time, GMT+05:45)",
    ),
    "es": (
        "domingo, 17 de enero de 2027, 7:00 (hora estándar de Colombia, GMT-05:00)",
        "lunes, 1 de marzo de 2027, 7:00 (hora estándar de Colombia, GMT-05:00)",
        "viernes, 31 de diciembre de 2027, 7:00 (hora estándar de Colombia, GMT-05:00)",
    ),
    "fr": (
        "dimanche 17 janvier 2027, 13:00 (heure normale d’Europe centrale, UTC+01:00)",
        "lundi 1 mars 2027, 13:00 (heure normale d’Europe centrale, UTC+01:00)",
        "vendredi 31 décembre 2027, 13:00 (heure normale d’Europe centrale, UTC+01:00)",
    ),
    "ru": (
        "воскресенье, 17 января 2027\u202fг., 15:00 (Москва, стандартное время, GMT+03:00)",
        "понедельник, 1 марта 2027\u202fг., 15:00 (Москва, стандартное время, GMT+03:00)",
        "пятница, 31 декабря 2027\u202fг., 15:00 (Москва, стандартное время, GMT+03:00)",
    ),
    "zh": (
        "2027年1月17日星期日 20:00（中国标准时间，GMT+08:00）",
        "2027年3月1日星期一 20:00（中国标准时间，GMT+08:00）",
        "2027年12月31日星期五 20:00（中国标准时间，GMT+08:00）",
    ),
    "pt": (
        "domingo, 17 de janeiro de 2027 09:00 (Horário Padrão de Brasília, GMT-03:00)",
        "segunda-feira, 1 de março de 2027 09:00 (Horário Padrão de Brasília, GMT-03:00)",
        "sexta-feira, 31 de dezembro de 2027 09:00 (Horário Padrão de Brasília, GMT-03:00)",
    ),
    "ko": (
        "2027년 1월 17일 일요일 PM 9:00 (대한민국 표준시, GMT+09:00)",
        "2027년 3월 1일 월요일 PM 9:00 (대한민국 표준시, GMT+09:00)",
        "2027년 12월 31일 금요일 PM 9:00 (대한민국 표준시, GMT+09:00)",
    ),
}
LONG_DATES = {
    "ar": "31 ديسمبر 2027",
    "en": "December 31, 2027",
    "es": "31 de diciembre de 2027",
    "fr": "31 décembre 2027",
    "ru": "31 декабря 2027\u202fг.",
    "zh": "2027年12月31日",
    "pt": "31 de dezembro de 2027",
    "ko": "2027년 12월 31일",
}


@pytest.mark.parametrize(("name", "expected"), DATES.items())
def test_dates_week_days_months_and_zones_in_every_language(
    name: str, expected: tuple[str, ...]
) -> None:
    sample = BY_NAME[name]
    locale = dates_locale(sample.languages)
    zone = ZoneInfo(sample.city.timezone)
    assert tuple(local_datetime(moment, zone, locale) for moment in MOMENTS) == expected
    assert local_date(MOMENTS[2], ZoneInfo("UTC"), locale) == LONG_DATES[name]


# -- a whole reminder per language ---------------------------------------------------------


def reminder_in(days_before: int) -> DeadlineReminderEvent:
    data = sample_event(Kind.DEADLINE_REMINDER, SAMPLE_NOW).data
    assert isinstance(data, DeadlineReminder)
    step = data.model_copy(
        update={"offset_seconds": -days_before * 86400, "step": f"{days_before}d-before"}
    )
    return reminder_event(step, fired_at=SAMPLE_NOW)


def mail(sample: Sample, days_before: int) -> EmailMessage:
    rendered = Renderer().render(reminder_in(days_before), sample.city, sample.languages)
    address = sample.city.contacts[0]
    raw = compose(
        rendered,
        sender="UNESCO GNLC <gnlc@example.org>",
        recipient=Recipient(sample.city.name, address, f"{sample.city.id}:{address}"),
        event_id="e-1",
        sent_at=SAMPLE_NOW,
        message_id_domain="notify.example.org",
    )
    assert raw.partition(b"\r\n\r\n")[0].isascii()
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    return message


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


# (Content-Language, dir, greeting, due date line, subject for 21 days, 1/2/5 days phrases)
EXPECTED = {
    "ar": (
        "ar",
        "rtl",
        f"الزميلات والزملاء الأعزاء في {FSI}Chefchaouen{PDI}،",
        "الموعد النهائي: الأحد، 17 يناير 2027، 10:00 ص (توقيت المغرب، غرينتش\u200e+01:00)",
        "تذكير: تقرير التقدم المحرز لفترة السنتين – يحين الموعد النهائي بعد 21 يومًا"
        " (17 يناير 2027)",
        ("بعد يوم واحد", "بعد يومين", "بعد 5 أيام"),
    ),
    "en": (
        "en",
        "ltr",
        "Dear colleagues in Kathmandu,",
        "Due: Sunday, January 17, 2027, 2:45\u202fPM (Nepal Time, GMT+05:45)",
        "Reminder: Biennial progress report – due in 21 days (January 17, 2027)",
        ("due in 1 day ", "due in 2 days", "due in 5 days"),
    ),
    "es": (
        "es",
        "ltr",
        "Estimadas y estimados colegas de Medellín:",
        "Fecha límite: domingo, 17 de enero de 2027, 4:00 (hora estándar de Colombia, GMT-05:00)",
        "Recordatorio: Informe bienal de progreso – vence en 21 días (17 de enero de 2027)",
        ("en 1 día ", "en 2 días", "en 5 días"),
    ),
    "fr": (
        "fr",
        "ltr",
        "Chères et chers collègues de la ville de Clermont-Ferrand,",
        "Échéance\xa0: dimanche 17 janvier 2027, 10:00"
        " (heure normale d’Europe centrale, UTC+01:00)",
        "Rappel\xa0: Rapport d'étape biennal – échéance dans 21 jours (17 janvier 2027)",
        ("dans 1 jour ", "dans 2 jours", "dans 5 jours"),
    ),
    "ru": (
        "ru",
        "ltr",
        "Уважаемые коллеги из города Казань!",
        "Срок: воскресенье, 17 января 2027\u202fг., 12:00 (Москва, стандартное время, GMT+03:00)",
        "Напоминание: Двухгодичный доклад о ходе работы – срок истекает через 21 день"
        " (17 января 2027\u202fг.)",
        ("через 1 день", "через 2 дня", "через 5 дней"),
    ),
    "zh": (
        "zh-Hans",
        "ltr",
        "尊敬的杭州各位同事：",
        "截止时间：2027年1月17日星期日 17:00（中国标准时间，GMT+08:00）",
        "提醒：两年期进展报告 – 距截止还有21天（2027年1月17日）",
        ("还有1天", "还有2天", "还有5天"),
    ),
    "pt": (
        "pt",
        "ltr",
        "Prezadas e prezados colegas de Sorocaba,",
        "Prazo: domingo, 17 de janeiro de 2027 06:00 (Horário Padrão de Brasília, GMT-03:00)",
        "Lembrete: Relatório bienal de progresso – o prazo termina em 21 dias"
        " (17 de janeiro de 2027)",
        ("em 1 dia ", "em 2 dias", "em 5 dias"),
    ),
    "ko": (
        "ko",
        "ltr",
        "수원시 담당자 여러분께",
        "마감: 2027년 1월 17일 일요일 PM 6:00 (대한민국 표준시, GMT+09:00)",
        "알림: 격년 진행 보고서 – 마감까지 21일 (2027년 1월 17일)",
        ("마감까지 1일", "마감까지 2일", "마감까지 5일"),
    ),
}


def test_every_catalog_language_has_a_sample_city() -> None:
    assert set(EXPECTED) == set(BY_NAME) == set(DAYS)
    assert {CATALOGS.choose(s.languages) for s in SAMPLES} == CATALOGS.tags


@pytest.mark.parametrize("name", EXPECTED)
def test_a_reminder_in_each_language(name: str) -> None:
    sample = BY_NAME[name]
    language, direction, greeting, due, subject, phrases = EXPECTED[name]
    message = mail(sample, 21)
    assert message["Subject"] == subject
    assert message["Content-Language"] == language
    assert message["To"].addresses[0].display_name == sample.city.name
    html, text = body(message, "html"), body(message, "plain")
    assert f'<html lang="{language}" dir="{direction}">' in html
    assert f'<body class="body" dir="{direction}"' in html
    assert greeting in text
    assert due in text
    assert "Biennial" not in text or name == "en"  # the operator's title in the language
    for days_before, phrase in zip((1, 2, 5), phrases, strict=True):
        assert phrase in mail(sample, days_before)["Subject"] + " "


def test_arabic_mail_isolates_the_latin_name_url_and_reference() -> None:
    message = mail(BY_NAME["ar"], 7)
    html, text = body(message, "html"), body(message, "plain")
    assert "في <bdi>Chefchaouen</bdi>،" in html
    assert '<a class="link" href="https://example.org/gnlc/report" dir="ltr"' in html
    assert "<bdi>" in html.split("المرجع:", 1)[1]
    assert f"فتح صفحة التقديم: {FSI}https://example.org/gnlc/report{PDI}" in text
    assert f"المرجع: {FSI}" in text
    # the layout is mirrored: right-aligned blocks, the label's padding on the other side
    assert "text-align: right" in html
    assert "padding: 4px 0 4px 12px" in html


def test_fonts_for_each_script() -> None:
    fonts = {s.name: mail(s, 7) for s in SAMPLES if s.name in ("ar", "zh", "ko", "ru")}
    assert "Noto Naskh Arabic" in body(fonts["ar"], "html")
    assert "Microsoft YaHei" in body(fonts["zh"], "html").split("font-family:", 1)[1][:40]
    assert "Malgun Gothic" in body(fonts["ko"], "html").split("font-family:", 1)[1][:40]
    assert "Arial" in body(fonts["ru"], "html").split("font-family:", 1)[1][:20]


# -- issue 16: operator text in another direction than the mail ----------------------------


def test_an_arabic_title_in_an_english_mail_has_its_own_language_and_direction() -> None:
    data = reminder_in(7).data.model_copy(update={"title": {"ar": "التقرير المرحلي"}})
    event = reminder_event(data, fired_at=SAMPLE_NOW)
    rendered = Renderer().render(event, BY_NAME["en"].city, ("en",))
    assert rendered.language == "en"
    assert '<html lang="en" dir="ltr">' in rendered.html
    assert '<h1 lang="ar" dir="rtl" align="right"' in rendered.html
    assert rendered.subject == (
        f"Reminder: {FSI}التقرير المرحلي{PDI} – due in 7 days (January 17, 2027)"
    )
    assert f"<title>Reminder: {FSI}التقرير المرحلي{PDI}" in rendered.html
    assert "\nالتقرير المرحلي\n" in rendered.text


@pytest.mark.parametrize(
    ("text", "lang", "direction"),
    [
        ("التقرير المرحلي", "ar", Direction.RTL),
        ("التقرير المرحلي", "en", Direction.RTL),  # filed under English, still Arabic
        ("Progress report", "ar", Direction.LTR),
        ("2027", "ar", Direction.RTL),  # no letters: the language's direction
        ("2027", "fr", Direction.LTR),
        ("گزارش", "fa", Direction.RTL),
    ],
)
def test_operator_text_direction(text: str, lang: str, direction: Direction) -> None:
    assert Text(text, lang).dir is direction
    assert Text(text, lang).align == ("right" if direction is Direction.RTL else "left")


@pytest.mark.parametrize(
    ("text", "lang", "html_lang"),
    [
        ("التقرير المرحلي", "ar", "ar"),
        ("التقرير المرحلي", "en", "und-Arab"),  # filed under English: the script it is in
        ("گزارش", "fa", "fa"),
        ("Progress report", "ar", "und-Latn"),
        ("Progress report", "fr", "fr"),
        ("两年期进展报告", "zh", "zh"),
        ("两年期进展报告", "zh-Hans", "zh-Hans"),
        ("격년 진행 보고서", "ko", "ko"),
        ("年次報告書", "ja", "ja"),  # Chinese characters are Japanese script too
        ("2027", "ar", "ar"),  # no letters: as given
        ("Отчёт", "ru", "ru"),
    ],
)
def test_operator_text_language_is_given_or_its_script(
    text: str, lang: str, html_lang: str
) -> None:
    assert Text(text, lang).html_lang == html_lang


def test_an_arabic_title_filed_under_english_is_marked_with_its_script() -> None:
    title = {"en": "التقرير المرحلي"}
    event = reminder_event(
        DeadlineReminder(
            deadline_id="report",
            title=title,
            due_at=datetime(2027, 1, 17, tzinfo=UTC),
            step="7d-before",
            offset_seconds=-7 * 86400,
            audience=Audience(all_members=True),
        ),
        fired_at=datetime(2027, 1, 10, tzinfo=UTC),
    )
    rendered = Renderer().render(event, BY_NAME["en"].city, ("en",))
    assert '<h1 lang="und-Arab" dir="rtl" align="right"' in rendered.html


@pytest.mark.parametrize(
    ("value", "context", "isolated"),
    [
        ("Kathmandu", Direction.LTR, False),
        ("أسوان (Aswan)", Direction.LTR, True),
        ("Chefchaouen", Direction.RTL, True),
        ("17 يناير 2027", Direction.RTL, False),
        ("https://example.org/a?b=1", Direction.RTL, True),
        ("12:00", Direction.RTL, False),
        ("غرينتش\u200e+01:00", Direction.RTL, False),  # a mark is not a letter
        ("17 يناير 2027، 09:00 UTC", Direction.RTL, True),
        ("", Direction.RTL, False),
    ],
)
def test_plain_text_is_isolated_only_where_needed(
    value: str, context: Direction, isolated: bool
) -> None:
    assert isolate(value, context) == (f"{FSI}{value}{PDI}" if isolated else value)
    assert first_strong("12:00 UTC") is Direction.LTR
    assert first_strong("12:00") is None


# -- fallback chains ------------------------------------------------------------------------

TITLES = {"en": "E", "fr": "F", "ar": "A", "pt-BR": "P", "zh": "Z", "zh-TW": "T"}


@pytest.mark.parametrize(
    ("languages", "wording", "dates", "title"),
    [
        (("ar", "fr"), "ar", "ar", "ar"),  # Casablanca: Arabic first
        (("ja", "fr"), "fr", "ja", "fr"),  # no Japanese catalog or title: French; dates Japanese
        (("tlh", "ko"), "ko", "ko", "en"),  # Klingon unknown even to CLDR; no Korean title
        (("fr-CA",), "fr", "fr_CA", "fr"),
        (("pt",), "pt", "pt", "pt-BR"),  # a text for pt-BR serves pt
        (("zh-CN",), "zh_Hans", "zh_Hans_CN", "zh"),
        (("zh-TW",), "en", "zh_Hant_TW", "zh-TW"),  # Traditional: no Simplified catalog
        (("zh-HK",), "en", "zh_Hant_HK", "zh-TW"),  # a Traditional text, not the Simplified
        (("xx",), "en", "en", "en"),
        ((), "en", "en", "en"),
    ],
)
def test_chain_picks_wording_dates_and_texts_each_on_its_own(
    languages: tuple[str, ...], wording: str, dates: str, title: str
) -> None:
    chosen = Renderer().choose(languages)
    assert chosen.languages[-1] == "en"
    assert chosen.wording.tag == wording
    assert str(chosen.dates) == dates
    assert pick_language(TITLES, chosen.languages) == title


def test_chain_ends_in_english_and_names_each_language_once() -> None:
    assert chain("ar", "fr") == ("ar", "fr", "en")
    assert chain("fr", "FR", None, "en") == ("fr", "en")
    assert chain() == ("en",)


def test_the_notice_records_the_language_used() -> None:
    """A city whose language has no catalog follows its chain; the message says which
    language its wording is in (``RenderedEmail.language``, ``Content-Language``)."""
    city = City(
        id="casablanca",
        name="Casablanca",
        country="MA",
        region="Arab States",
        timezone="Africa/Casablanca",
        language="ber",  # Berber: no catalog, and CLDR has no Berber dates either
        contacts=("learning@casablanca.example.org",),
    )
    rendered = Renderer().render(reminder_in(7), city, ("ber", "ar", "fr"))
    assert rendered.language == "ar"
    assert rendered.dates_language == "ar"
    assert '<html lang="ar" dir="rtl">' in rendered.html
    only_french = reminder_in(7).data.model_copy(update={"title": {"fr": "Rapport", "en": "R"}})
    rendered = Renderer().render(
        reminder_event(only_french, fired_at=SAMPLE_NOW), city, ("ber", "ar", "fr")
    )
    assert '<h1 lang="fr" dir="ltr" align="left"' in rendered.html
    assert rendered.language == "ar"
    # a city of one language without a catalog: English
    assert Renderer().render(reminder_in(7), city).language == "en"
    # the directory's chain is the city's own: no chain given, it is followed
    chained = city.model_copy(update={"languages": ("ber", "ar", "fr")})
    assert Renderer().render(reminder_in(7), chained).language == "ar"


@pytest.mark.parametrize(
    ("language", "languages", "expected", "wording"),
    [
        ("fr", None, ("fr", "en"), "fr"),  # one language, as before chains
        ("ar", "ar;fr", ("ar", "fr", "en"), "ar"),  # Casablanca
        ("vi", "vi;fr", ("vi", "fr", "en"), "fr"),  # no Vietnamese catalog: French
        ("ja", "ja;ko;en", ("ja", "ko", "en"), "ko"),
        ("ber", "ber", ("ber", "en"), "en"),
        ("en", "en;fr", ("en", "fr"), "en"),
    ],
)
def test_city_languages_reads_the_directory_chain(
    language: str, languages: str | None, expected: tuple[str, ...], wording: str
) -> None:
    city = City.model_validate(
        {
            "id": "somewhere",
            "name": "Somewhere",
            "country": "MA",
            "region": "Arab States",
            "timezone": "Africa/Casablanca",
            "language": language,
            "languages": languages,
            "contacts": ("a@somewhere.example.org",),
        }
    )
    assert city_languages(city) == expected
    assert Renderer().render(reminder_in(7), city).language == wording
