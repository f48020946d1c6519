"""The preview command: any template, any city and language, to .eml, .html and .txt."""

from __future__ import annotations

import json
import shutil
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gnlc_cli.main import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.mark.parametrize("template", ["deadline-reminder", "overdue-reminder", "announcement"])
def test_writes_the_three_files(template: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["preview", template, "--city", "kathmandu", "--language", "fr", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    stem = tmp_path / f"{template}-kathmandu-fr"
    message = message_from_bytes(stem.with_suffix(".eml").read_bytes(), policy=policy.default)
    assert message["Content-Language"] == "fr"
    assert message["To"].addresses[0].addr_spec == "lll@kathmandu.example.org"
    html = stem.with_suffix(".html").read_text()
    assert '<html lang="fr" dir="ltr">' in html
    text = stem.with_suffix(".txt").read_text()
    assert "Chères et chers collègues de la ville de Kathmandu," in text or "Événement" in text
    assert "(heure : Népal, UTC+05:45)" in text or template == "announcement"
    assert ("List-Unsubscribe" in message) is (template == "announcement")


def test_renders_a_given_event(tmp_path: Path) -> None:
    event = ROOT / "schemas/examples/deadline.reminder/valid/overdue-minimal.json"
    result = runner.invoke(
        app,
        [
            "preview",
            "overdue-reminder",
            "--city",
            "laval",
            "--event",
            str(event),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "overdue-reminder-laval-fr.txt").read_text()
    assert "Rapport d'étape biennal" in text
    assert "1fbcfa17-9717-5eed-b918-c4062534eda3" in text


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["reminder"], "template: unknown 'reminder'"),
        (["announcement", "--city", "atlantis"], "city: no city 'atlantis'"),
        (["announcement", "--language", "français"], "language: "),
        (["deadline-reminder", "--event", "/nonexistent.json"], "event: "),
    ],
)
def test_bad_input_names_the_option_and_the_problem(
    args: list[str], problem: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["preview", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert problem in result.output


def test_an_event_of_another_kind_is_refused(tmp_path: Path) -> None:
    event = ROOT / "schemas/examples/deadline.reminder/valid/overdue-minimal.json"
    result = runner.invoke(
        app, ["preview", "announcement", "--event", str(event), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "renders with the overdue-reminder template" in result.output
    assert json.loads(event.read_text())["type"] == "deadline.reminder"


def test_a_language_without_a_catalog_is_refused_with_the_list(tmp_path: Path) -> None:
    result = runner.invoke(app, ["preview", "announcement", "--language", "zz-ZZ"])
    assert result.exit_code == 2
    known = "ar, en, es, fr, ko, pt, ru, zh-Hans"
    assert f"language: no catalog for 'zz-ZZ'; languages with catalogs: {known}" in result.output
    assert not (tmp_path / "preview").exists()
    regional = runner.invoke(
        app, ["preview", "announcement", "--language", "fr-CA", "--out", str(tmp_path)]
    )
    assert regional.exit_code == 0, regional.output


def test_the_city_comes_from_the_schedulers_directory_when_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's directory says Laval now reads Spanish: the preview follows it."""
    from gnlc_cli import client
    from gnlc_core.directory import load_csv
    from gnlc_core.settings import SAMPLE_DIRECTORY

    laval = load_csv(SAMPLE_DIRECTORY).by_id["laval"].model_dump(mode="json")
    asked: list[str] = []

    def scheduler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/v1/cities/laval":
            return httpx.Response(200, json={**laval, "language": "es", "languages": ["es"]})
        return httpx.Response(404, json={"detail": "no city"})

    monkeypatch.setattr(client, "transport", httpx.MockTransport(scheduler))
    monkeypatch.setenv("GNLC_OPERATOR_TOKEN", "t")
    result = runner.invoke(
        app, ["preview", "announcement", "--city", "laval", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert asked == ["/v1/cities/laval"]
    assert (tmp_path / "announcement-laval-es.eml").exists()
    assert "note:" not in result.output

    unknown = runner.invoke(app, ["preview", "announcement", "--city", "atlantis"])
    assert unknown.exit_code == 2
    assert "city: no city 'atlantis' in the scheduler's directory" in unknown.output


def test_without_the_scheduler_the_directory_file_is_read_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    from gnlc_cli import client

    monkeypatch.setattr(client, "transport", httpx.MockTransport(down))
    monkeypatch.setenv("GNLC_OPERATOR_TOKEN", "t")
    result = runner.invoke(
        app, ["preview", "announcement", "--city", "laval", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "note: directory from" in result.output
    assert "sample-cities.csv" in result.output
    assert (tmp_path / "announcement-laval-fr.eml").exists()


def test_one_mail_per_language_for_a_sample_city(tmp_path: Path) -> None:
    from gnlc_core.settings import Settings
    from gnlc_email.preview import write_all_languages
    from gnlc_email.render import Kind

    pages = write_all_languages(Kind.DEADLINE_REMINDER, tmp_path, Settings())
    names = sorted(page.stem.removeprefix("deadline-reminder-") for page in pages)
    assert names == ["ar", "en", "en-arabic-title", "es", "fr", "ko", "pt", "ru", "zh"]
    for page in pages:
        assert page.with_suffix(".eml").is_file()
        assert page.with_suffix(".txt").is_file()
    arabic = (tmp_path / "deadline-reminder-ar.html").read_text()
    assert '<html lang="ar" dir="rtl">' in arabic
    assert "<bdi>Chefchaouen</bdi>" in arabic


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_screenshots_are_pictures_of_each_language(tmp_path: Path) -> None:
    from gnlc_core.settings import Settings
    from gnlc_email.preview import screenshot, write_all_languages
    from gnlc_email.render import Kind

    pages = write_all_languages(Kind.ANNOUNCEMENT, tmp_path, Settings())
    arabic = next(page for page in pages if page.stem.endswith("-ar"))
    png = screenshot(arabic, tmp_path / "ar.png", width=400, height=300)
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(data[16:20], "big") == 400  # IHDR width
