"""Previews: any template for any city and language, as the ``.eml`` a recipient would
get and its ``.html`` and ``.txt`` parts, so an operator can look before publishing
(``gnlc-notify preview``); and pictures: one mail per language for a sample city, and the
preference page in English and Arabic, rendered by headless Chromium to PNG
(``deploy/screenshots.sh DIR``, which runs ``python -m gnlc_email.preview --screenshots DIR``
and ``--preference-pages DIR``)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from gnlc_core.db import create_engine, migrate
from gnlc_core.directory import City
from gnlc_core.events import (
    AnnouncementPublished,
    Audience,
    DeadlineCancellation,
    DeadlineReminder,
    DeadlineRevision,
    announcement_event,
    change_event,
    reminder_event,
)
from gnlc_core.settings import Settings
from gnlc_email.choices import Choice, Digest
from gnlc_email.i18n import Catalogs, LanguageChain
from gnlc_email.message import Recipient, compose
from gnlc_email.preference_page import (
    PreferencesState,
    preferences_router,
    preferences_tokens,
    preferences_url,
)
from gnlc_email.render import Event, Kind, Renderer
from gnlc_email.store import Preferences
from gnlc_email.unsubscribe import Subscriber, Tokens, unsubscribe_url

PREVIEW_SECRET = "preview only: this link does not work"  # noqa: S105 - not a secret


PROGRESS_REPORT = {
    "en": "Biennial progress report",
    "fr": "Rapport d'étape biennal",
    "es": "Informe bienal de progreso",
    "ar": "تقرير التقدم المحرز لفترة السنتين",
    "ru": "Двухгодичный доклад о ходе работы",
    "zh": "两年期进展报告",
    "pt": "Relatório bienal de progresso",
    "ko": "격년 진행 보고서",
}
PROGRESS_REPORT_DESCRIPTION = {
    "en": "Please submit your city's biennial progress report.",
    "fr": "Merci de soumettre le rapport d'étape biennal de votre ville.",
    "es": "Envíe el informe bienal de progreso de su ciudad.",
    "ar": "يُرجى تقديم تقرير التقدم المحرز لفترة السنتين الخاص بمدينتكم.",
    "ru": "Просим представить двухгодичный доклад вашего города о ходе работы.",
    "zh": "请提交贵市的两年期进展报告。",
    "pt": "Envie o relatório bienal de progresso da sua cidade.",
    "ko": "귀 도시의 격년 진행 보고서를 제출해 주십시오.",
}
EDUCATION_DAY = {
    "en": "International Day of Education",
    "fr": "Journée internationale de l'éducation",
    "es": "Día Internacional de la Educación",
    "ar": "اليوم الدولي للتعليم",
    "ru": "Международный день просвещения",
    "zh": "国际教育日",
    "pt": "Dia Internacional da Educação",
    "ko": "세계 교육의 날",
}
EDUCATION_DAY_BODY = {
    "en": "Join us on 24 January.\n\nProgrammes and registration at the link below.",
    "fr": "Rejoignez-nous le 24 janvier.\n\nProgramme et inscription au lien ci-dessous.",
    "es": "Acompáñenos el 24 de enero.\n\nProgramas e inscripción en el enlace de abajo.",
    "ar": "انضموا إلينا في 24 يناير.\n\nالبرنامج والتسجيل عبر الرابط أدناه.",
    "ru": "Присоединяйтесь к нам 24 января.\n\nПрограмма и регистрация — по ссылке ниже.",
    "zh": "欢迎于1月24日参加。\n\n活动安排和报名方式请见以下链接。",
    "pt": "Participe conosco em 24 de janeiro.\n\nProgramação e inscrições no link abaixo.",
    "ko": "1월 24일에 함께해 주십시오.\n\n프로그램과 등록 안내는 아래 링크에서 확인하십시오.",
}


def sample_event(kind: Kind, now: datetime) -> Event:
    """A plausible event of each kind, with texts in the eight languages of the catalogs."""
    if kind is Kind.ANNOUNCEMENT:
        return announcement_event(
            AnnouncementPublished(
                announcement_id="preview-education-day",
                category="event",
                title=EDUCATION_DAY,
                body=EDUCATION_DAY_BODY,
                audience=Audience(all_members=True),
                published_at=now,
                link="https://example.org/gnlc/education-day",
            )
        )
    if kind in {Kind.DEADLINE_UPDATED, Kind.DEADLINE_CANCELLED}:
        revision = DeadlineRevision(
            deadline_id="preview-progress-report",
            title=PROGRESS_REPORT,
            description=PROGRESS_REPORT_DESCRIPTION,
            due_at=(now + timedelta(days=14)).replace(second=0, microsecond=0),
            audience=Audience(all_members=True),
            link="https://example.org/gnlc/report",
            sequence=1,
            revised_at=now,
        )
        if kind is Kind.DEADLINE_CANCELLED:
            revision = DeadlineCancellation(**{**revision.model_dump(), "sequence": 2})
        return change_event(revision)
    overdue = kind is Kind.OVERDUE_REMINDER
    offset = 3 * 86400 if overdue else -7 * 86400
    due = (now - timedelta(seconds=offset)).replace(second=0, microsecond=0)
    return reminder_event(
        DeadlineReminder(
            deadline_id="preview-progress-report",
            title=PROGRESS_REPORT,
            description=PROGRESS_REPORT_DESCRIPTION,
            due_at=due,
            step="3d-overdue" if overdue else "7d-before",
            offset_seconds=offset,
            audience=Audience(all_members=True),
            link="https://example.org/gnlc/report",
        ),
        fired_at=now,
    )


def kind_of(event: Event) -> Kind:
    if event.type != "deadline.reminder":
        return Kind(event.type.replace(".", "-").replace("announcement-published", "announcement"))
    if event.data.offset_seconds > 0:
        return Kind.OVERDUE_REMINDER
    return Kind.DEADLINE_REMINDER


def preview_files(
    event: Event,
    city: City,
    settings: Settings,
    *,
    now: datetime | None = None,
    languages: Sequence[str] | None = None,
) -> dict[str, bytes]:
    """``{".eml": ..., ".html": ..., ".txt": ...}`` for the city's first contact, in its
    languages (or the chain given)."""
    rendered = Renderer(domain=settings.message_id_domain).render(event, city, languages)
    address = city.contacts[0]
    url = links = None
    if rendered.optional:
        subscriber = Subscriber(address, city.id, rendered.language)
        token = Tokens([PREVIEW_SECRET]).sign(subscriber)
        url = unsubscribe_url(settings.email_public_url, token)
        token = preferences_tokens([PREVIEW_SECRET]).sign(subscriber)
        links = preferences_url(settings.email_public_url, token)
    personal = rendered.for_recipient(url, preferences_url=links)
    eml = compose(
        rendered,
        sender=settings.mail_from,
        recipient=Recipient(city.name, address, f"{city.id}:{address}"),
        event_id=event.id,
        sent_at=now or datetime.now(UTC),
        message_id_domain=settings.message_id_domain,
        reply_to=settings.mail_reply_to,
        unsubscribe_url=url,
        preferences_url=links,
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


# -- one mail per language, and its picture ------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A sample reader: a city and its chain of languages."""

    name: str  # file stem: the language, or what the sample shows
    city: City
    languages: LanguageChain


def _city(city_id: str, name: str, country: str, region: str, zone: str, language: str) -> City:
    return City(
        id=city_id,
        name=name,
        country=country,
        region=region,
        timezone=zone,
        language=language,
        contacts=(f"learning@{city_id}.example.org",),
    )


#: One city per language. The Arabic one has a Latin-script name and a chain (Arabic, then
#: French), so its picture shows the name and the URL isolated in right-to-left text.
SAMPLES = (
    Sample(
        "ar",
        _city("chefchaouen", "Chefchaouen", "MA", "Arab States", "Africa/Casablanca", "ar"),
        ("ar", "fr"),
    ),
    Sample(
        "en",
        _city("kathmandu", "Kathmandu", "NP", "Asia and the Pacific", "Asia/Kathmandu", "en"),
        ("en",),
    ),
    Sample(
        "es",
        _city(
            "medellin", "Medellín", "CO", "Latin America and the Caribbean", "America/Bogota", "es"
        ),
        ("es",),
    ),
    Sample(
        "fr",
        _city(
            "clermont-ferrand",
            "Clermont-Ferrand",
            "FR",
            "Europe and North America",
            "Europe/Paris",
            "fr",
        ),
        ("fr",),
    ),
    Sample(
        "ru",
        _city("kazan", "Казань", "RU", "Europe and North America", "Europe/Moscow", "ru"),
        ("ru",),
    ),
    Sample(
        "zh",
        _city("hangzhou", "杭州", "CN", "Asia and the Pacific", "Asia/Shanghai", "zh"),
        ("zh",),
    ),
    Sample(
        "pt",
        _city(
            "sorocaba",
            "Sorocaba",
            "BR",
            "Latin America and the Caribbean",
            "America/Sao_Paulo",
            "pt",
        ),
        ("pt",),
    ),
    Sample(
        "ko", _city("suwon", "수원시", "KR", "Asia and the Pacific", "Asia/Seoul", "ko"), ("ko",)
    ),
)
#: Issue 16's case: an English mail whose deadline title exists only in Arabic.
ARABIC_TITLE_IN_ENGLISH = Sample("en-arabic-title", SAMPLES[1].city, ("en",))
#: A fixed moment, so the pictures only change when the rendering does.
SAMPLE_NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def sample_mails(kind: Kind, now: datetime = SAMPLE_NOW) -> list[tuple[Sample, Event]]:
    """The event of ``kind`` for each sample reader (and the Arabic-title case for
    reminders)."""
    event = sample_event(kind, now)
    mails: list[tuple[Sample, Event]] = [(sample, event) for sample in SAMPLES]
    if isinstance(event.data, DeadlineReminder):
        arabic = event.data.model_copy(update={"title": {"ar": PROGRESS_REPORT["ar"]}})
        mails.append((ARABIC_TITLE_IN_ENGLISH, reminder_event(arabic, fired_at=now)))
    return mails


def write_all_languages(
    kind: Kind, directory: Path, settings: Settings, now: datetime = SAMPLE_NOW
) -> list[Path]:
    """``<kind>-<sample>.eml/.html/.txt`` for every sample reader; the HTML files."""
    pages: list[Path] = []
    for sample, event in sample_mails(kind, now):
        files = preview_files(event, sample.city, settings, now=now, languages=sample.languages)
        written = write_preview(files, directory, f"{kind.value}-{sample.name}")
        pages.extend(path for path in written if path.suffix == ".html")
    return pages


def chromium() -> str:
    """The Chromium executable (Debian's ``chromium``), or FileNotFoundError."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no chromium: apt-get install -y chromium")


def screenshot(page: Path, png: Path, *, width: int = 680, height: int = 720) -> Path:
    """A picture of an HTML file as headless Chromium draws it."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(  # noqa: S603 - a fixed executable and our own file
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png.resolve()}",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return png


def screenshots(
    directory: Path, settings: Settings, kinds: Sequence[Kind] = (Kind.DEADLINE_REMINDER,)
) -> list[Path]:
    """PNGs of one mail per language (and the Arabic-title case) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    pictures = []
    with tempfile.TemporaryDirectory() as scratch:
        for kind in kinds:
            for page in write_all_languages(kind, Path(scratch), settings):
                pictures.append(screenshot(page, directory / f"{page.stem}.png"))
    return pictures


# -- the preference page -------------------------------------------------------------------

#: The pictures of the preference page: (file stem, sample reader, what the contact chose).
PREFERENCE_SAMPLES = (
    ("preferences-en", SAMPLES[1], Choice(frozenset({"award", "other"}), Digest.ON)),
    ("preferences-ar", SAMPLES[0], Choice(frozenset({"news"}))),
)


async def preference_pages(directory: Path) -> list[Path]:
    """The preference page as the service serves it (its router, a scratch database), once
    per sample reader with some choices saved: ``<stem>.html`` in ``directory``."""
    public = "http://127.0.0.1:8101"
    tokens = preferences_tokens([PREVIEW_SECRET])
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(scratch) / 'preview.db'}")
        await migrate(engine, "email")
        preferences = Preferences(engine)
        app = FastAPI()
        app.include_router(
            preferences_router(PreferencesState(tokens, preferences), Catalogs(), public_url=public)
        )
        pages = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=public) as client:
            for stem, sample, choice in PREFERENCE_SAMPLES:
                address = sample.city.contacts[0]
                await preferences.save(address, sample.city.id, choice, subscribed=True)
                subscriber = Subscriber(address, sample.city.id, sample.languages[0])
                page = await client.get("/preferences", params={"token": tokens.sign(subscriber)})
                page.raise_for_status()
                path = directory / f"{stem}.html"
                path.write_text(page.text, encoding="utf-8")
                pages.append(path)
        await engine.dispose()
    return pages


def preference_screenshots(directory: Path) -> list[Path]:
    """PNGs of the preference page in English and Arabic in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        pages = asyncio.run(preference_pages(Path(scratch)))
        return [screenshot(page, directory / f"{page.stem}.png", height=820) for page in pages]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gnlc_email.preview",
        description="One email per language for a sample city: files, and pictures.",
    )
    parser.add_argument("--screenshots", type=Path, help="write a PNG per language here")
    parser.add_argument("--out", type=Path, help="write .eml, .html and .txt per language here")
    parser.add_argument(
        "--preference-pages", type=Path, help="write PNGs of the preference page here"
    )
    parser.add_argument(
        "--kind",
        action="append",
        choices=[kind.value for kind in Kind if kind is not Kind.DIGEST],  # one event's mails
        help="template(s) to render (default: deadline-reminder)",
    )
    args = parser.parse_args(argv)
    kinds = [Kind(k) for k in args.kind or [Kind.DEADLINE_REMINDER.value]]
    settings = Settings()
    if args.out:
        for kind in kinds:
            for page in write_all_languages(kind, args.out, settings):
                print(page.with_suffix(".*"))  # noqa: T201 - the command's output
    if args.screenshots:
        for picture in screenshots(args.screenshots, settings, kinds):
            print(picture)  # noqa: T201
    if args.preference_pages:
        for picture in preference_screenshots(args.preference_pages):
            print(picture)  # noqa: T201
    if not (args.out or args.screenshots or args.preference_pages):
        parser.error("give --out DIR, --screenshots DIR, --preference-pages DIR or several")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
