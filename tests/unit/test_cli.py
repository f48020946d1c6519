"""The operator CLI against a stand-in API (an httpx transport in the test): what each
command sends, and what it prints for each kind of answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gnlc_cli import client
from gnlc_cli.main import app

runner = CliRunner()
TOKEN = "t0ken"

CITIES = [
    {"id": "kathmandu", "name": "Kathmandu", "country": "NP", "region": "Asia and the Pacific",
     "timezone": "Asia/Kathmandu", "language": "en", "contacts": ["a@k.example.org"],
     "active": True},
    {"id": "laval", "name": "Laval", "country": "CA", "region": "Europe and North America",
     "timezone": "America/Toronto", "language": "fr-CA", "contacts": ["b@l.example.org"],
     "active": True},
]  # fmt: skip

Handler = Callable[[httpx.Request], httpx.Response]


class FakeApi:
    """Answers by (method, path); keeps every request it got."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/v1/cities"): lambda r: httpx.Response(200, json=CITIES),
        }

    def on(self, method: str, path: str, status: int = 200, body: Any = None) -> None:
        self.routes[(method, path)] = lambda r: httpx.Response(status, json=body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"detail": "missing or wrong bearer token"})
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            known = {path for _method, path in self.routes}
            if request.url.path in known:
                return httpx.Response(405, json={"detail": "Method Not Allowed"})
            return httpx.Response(404, json={"detail": "Not Found"})
        return handler(request)

    def sent(self, method: str, path: str) -> httpx.Request:
        matching = [r for r in self.requests if (r.method, r.url.path) == (method, path)]
        assert matching, f"no {method} {path} in {[(r.method, r.url.path) for r in self.requests]}"
        return matching[-1]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setattr(client, "transport", httpx.MockTransport(fake))
    monkeypatch.setenv("GNLC_OPERATOR_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return fake


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


PLAN = {
    "deadline_id": "report",
    "scheduled": [
        {"city_id": "kathmandu", "step": "7d-before", "fire_at": "2027-01-10T03:15:00+00:00"},
        {"city_id": "laval", "step": "due", "fire_at": "2027-01-17T14:00:00Z"},
    ],
    "not_scheduled": [
        {"city_id": "kathmandu", "step": "1d-before", "reason": "collapsed",
         "detail": "lands on the same instant as due"},
        {"city_id": "laval", "step": "30d-before", "reason": "past",
         "detail": "2026-12-18T14:00:00+00:00 is already past"},
    ],
}  # fmt: skip


# -- deadlines -----------------------------------------------------------------------------


def test_edit_sends_only_what_it_names_as_a_merge_patch(api: FakeApi) -> None:
    api.on("PATCH", "/v1/deadlines/report", body=PLAN)
    result = run("deadlines", "edit", "report", "--title", "Rapport", "--language", "fr")
    assert result.exit_code == 0, result.output
    request = api.sent("PATCH", "/v1/deadlines/report")
    assert request.headers["content-type"] == "application/merge-patch+json"
    assert body(request) == {"title": {"fr": "Rapport"}}

    run("deadlines", "edit", "report", "--hour", "14")
    assert body(api.sent("PATCH", "/v1/deadlines/report")) == {"delivery_hour": 14}
    run("deadlines", "edit", "report", "--exact", "--region", "Arab States")
    assert body(api.sent("PATCH", "/v1/deadlines/report")) == {
        "delivery_hour": None,
        "audience": {"all_members": False, "regions": ["Arab States"], "cities": []},
    }


def test_edit_from_a_file_with_texts_per_language(api: FakeApi, tmp_path: Path) -> None:
    api.on("PATCH", "/v1/deadlines/report", body={**PLAN, "not_scheduled": []})
    texts = tmp_path / "texts.yaml"
    texts.write_text(
        "title:\n  en: Progress report\n  fr: Rapport d'étape\n  es: Informe\n"
        "link: {en: 'https://example.org/en', fr: 'https://example.org/fr'}\n",
        encoding="utf-8",
    )
    result = run("deadlines", "edit", "report", "--from-file", str(texts), "--remind", "-2d")
    assert result.exit_code == 0, result.output
    assert body(api.sent("PATCH", "/v1/deadlines/report")) == {
        "title": {"en": "Progress report", "fr": "Rapport d'étape", "es": "Informe"},
        "link": {"en": "https://example.org/en", "fr": "https://example.org/fr"},
        "reminders": ["-2d"],
    }


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["deadlines", "edit", "report"], "nothing to change"),
        (["deadlines", "edit", "report", "--exact", "--hour", "9"], "exclude each other"),
        (["deadlines", "edit", "report", "--due", "2027-01-17T10:00:00"], "give the offset"),
        (["announcements", "edit", "news"], "nothing to change"),
        (["deadlines", "add", "report", "--title", "Report"], "missing --due, --all/--region"),
    ],
)
def test_commands_that_cannot_be_sent_say_why(api: FakeApi, args: list[str], problem: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert problem in result.output
    assert not api.requests


def test_an_older_scheduler_without_patch_gets_a_clear_message(api: FakeApi) -> None:
    api.on("PUT", "/v1/deadlines/report", body=PLAN)  # the route exists, PATCH does not
    result = run("deadlines", "edit", "report", "--title", "Report")
    assert result.exit_code == 1
    assert "this scheduler cannot edit part of a deadline" in result.output
    assert "answered 405 to PATCH /v1/deadlines/report" in result.output
    listed = run("announcements", "list")
    assert listed.exit_code == 1
    assert "this scheduler cannot list announcements" in listed.output


def test_add_says_what_was_scheduled_and_what_was_not_and_why(api: FakeApi) -> None:
    api.on("POST", "/v1/deadlines", 201, PLAN)
    result = run(
        "deadlines", "add", "report", "--title", "Report", "--due", "2027-01-17T09:00:00-05:00",
        "--all",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.output
    assert "report: 2 reminders scheduled, 2 not scheduled (1 collapsed, 1 past)" in out
    assert "2027-01-10 03:15 UTC" in out
    assert "2027-01-10 09:00 +05:45" in out  # Kathmandu's local time beside UTC
    assert "2027-01-17 09:00 -05:00" in out  # Laval's
    assert "lands on the same instant as due" in out
    assert "2026-12-18T14:00:00+00:00 is already past" in out
    header = next(line for line in out.splitlines() if "not scheduled because" in line)
    assert header.split() == ["city", "step", "not", "scheduled", "because", "detail"]
    sent = body(api.sent("POST", "/v1/deadlines"))
    assert sent["title"] == {"en": "Report"}
    assert sent["due_at"] == "2027-01-17T09:00:00-05:00"
    assert sent["delivery_hour"] == 9


def test_an_answer_without_not_scheduled_is_read_as_before(api: FakeApi) -> None:
    api.on("POST", "/v1/deadlines", 201, {"deadline_id": "r", "scheduled": PLAN["scheduled"]})
    result = run("deadlines", "add", "r", "--title", "R", "--due", "2027-01-17T09:00Z", "--all")
    assert result.exit_code == 0, result.output
    assert "r: 2 reminders scheduled\n" in result.output


def test_deadlines_list_is_a_table_with_local_and_utc_times(api: FakeApi) -> None:
    api.on(
        "GET",
        "/v1/deadlines",
        body=[
            {"id": "a", "state": "active", "due_at": "2027-01-17T22:59:00+00:00",
             "title": {"fr": "Rapport"}, "reminders": ["-7d", "0d"]},
            {"id": "b", "state": "past", "due_at": "2026-01-17T22:59:00", "title": {"en": "Old"}},
        ],
    )  # fmt: skip
    result = run("deadlines", "list", "--state", "past")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["id", "state", "due"]
    assert "─" not in result.output  # plain when not a terminal
    assert len(lines) == 2
    assert "2026-01-17 22:59 UTC" in lines[1]  # a naive time from an older API is UTC
    assert api.sent("GET", "/v1/deadlines").url.params["state"] == "past"


# -- announcements -------------------------------------------------------------------------


def test_announcements_publish_from_file_edit_and_list(api: FakeApi, tmp_path: Path) -> None:
    api.on("POST", "/v1/announcements", 202, {"publish_at": "2027-01-20T07:00:00+00:00"})
    api.on("PATCH", "/v1/announcements/day", 202, {"publish_at": "2027-01-21T07:00:00+00:00"})
    api.on(
        "GET",
        "/v1/announcements",
        body=[{"id": "day", "state": "scheduled", "category": "event",
               "publish_at": "2027-01-21T07:00:00+00:00", "title": {"en": "Education day"}}],
    )  # fmt: skip
    file = tmp_path / "day.yaml"
    file.write_text(
        "id: day\ncategory: event\n"
        "title: {en: Education day, fr: Journée de l'éducation}\n"
        "body: {en: Join us., fr: Rejoignez-nous.}\n"
        "publish_at: 2027-01-20T08:00:00+01:00\n",
        encoding="utf-8",
    )
    published = run("announcements", "publish", "day", "--from-file", str(file), "--all")
    assert published.exit_code == 0, published.output
    assert "day goes out at 2027-01-20 07:00 UTC" in published.output
    sent = body(api.sent("POST", "/v1/announcements"))
    assert sent["title"] == {"en": "Education day", "fr": "Journée de l'éducation"}
    assert sent["body"]["fr"] == "Rejoignez-nous."
    assert sent["publish_at"] == "2027-01-20T08:00:00+01:00"
    assert sent["audience"]["all_members"] is True

    edited = run("announcements", "edit", "day", "--body", "Venez !", "--language", "fr")
    assert edited.exit_code == 0, edited.output
    request = api.sent("PATCH", "/v1/announcements/day")
    assert request.headers["content-type"] == "application/merge-patch+json"
    assert body(request) == {"body": {"fr": "Venez !"}}

    listed = run("announcements", "list", "--state", "scheduled")
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[0].split()[:3] == ["id", "state", "category"]
    assert "Education day" in listed.output


WARNINGS = [
    "no title in ar (2 cities: amman, aswan), they get en",
    "no link in vi (1 city: hue), they get fr",
]


@pytest.mark.parametrize(
    ("args", "method", "path", "answer"),
    [
        (["deadlines", "add", "r", "--from-file", "texts.yaml", "--due", "2027-01-17T09:00Z",
          "--all"], "POST", "/v1/deadlines", {**PLAN, "warnings": WARNINGS}),
        (["deadlines", "edit", "report", "--from-file", "texts.yaml"], "PATCH",
         "/v1/deadlines/report", {**PLAN, "warnings": WARNINGS}),
        (["announcements", "publish", "r", "--from-file", "texts.yaml", "--category", "event",
          "--body", "B", "--all"], "POST", "/v1/announcements",
         {"publish_at": "2027-01-20T07:00:00+00:00", "warnings": WARNINGS}),
        (["announcements", "edit", "day", "--from-file", "texts.yaml"], "PATCH",
         "/v1/announcements/day", {"publish_at": "2027-01-20T07:00:00+00:00",
                                   "warnings": WARNINGS}),
    ],
)  # fmt: skip
def test_links_per_language_are_sent_and_the_warnings_printed(
    api: FakeApi, tmp_path: Path, args: list[str], method: str, path: str, answer: Any
) -> None:
    (tmp_path / "texts.yaml").write_text(
        "title: {en: Report, fr: Rapport}\n"
        "link: {en: 'https://example.org/en', fr: 'https://example.org/fr'}\n",
        encoding="utf-8",
    )
    api.on(method, path, 201 if method == "POST" else 200, answer)
    result = run(*args)
    assert result.exit_code == 0, result.output
    for warning in WARNINGS:
        assert f"warning: {warning}\n" in result.output
    assert body(api.sent(method, path))["link"] == {
        "en": "https://example.org/en",
        "fr": "https://example.org/fr",
    }


def test_a_file_naming_another_id_is_refused(api: FakeApi, tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text("id: other\ntitle: X\n", encoding="utf-8")
    result = run("announcements", "edit", "day", "--from-file", str(file))
    assert result.exit_code == 2
    assert "id: the file says 'other', the command 'day'" in result.output


# -- cities --------------------------------------------------------------------------------


def test_import_prints_every_problem_of_every_row(api: FakeApi, tmp_path: Path) -> None:
    problems = [
        {"loc": ["body", "line 3", "id"], "msg": "duplicate city id 'tromso'", "type": "x"},
        {"loc": ["body", "line 4"], "msg": "3 columns, expected 7", "type": "x"},
        {"loc": ["body", "line 4", "timezone"], "msg": "unknown IANA time zone", "type": "x"},
    ]
    api.on("POST", "/v1/cities/import", 422, {"detail": problems})
    file = tmp_path / "cities.csv"
    file.write_text("id,name\nx,y\n", encoding="utf-8")
    result = run("cities", "import", str(file))
    assert result.exit_code == 1
    assert "error (422): 3 problems:" in result.output
    assert "line 3.id: duplicate city id 'tromso'" in result.output
    assert "line 4: 3 columns, expected 7" in result.output
    assert "line 4.timezone: unknown IANA time zone" in result.output
    assert api.sent("POST", "/v1/cities/import").headers["content-type"] == "text/csv"


def test_an_empty_file_is_refused_before_sending(api: FakeApi, tmp_path: Path) -> None:
    file = tmp_path / "cities.csv"
    file.write_text("\n  \n", encoding="utf-8")
    result = run("cities", "import", str(file))
    assert result.exit_code == 2
    assert "is empty" in result.output
    assert not api.requests


# -- the operator token --------------------------------------------------------------------


def test_the_token_file_of_the_run_command_is_read(
    api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GNLC_OPERATOR_TOKEN")
    api.on("GET", "/v1/deadlines", body=[])
    missing = run("deadlines", "list")
    assert missing.exit_code == 2
    assert "no operator token: set GNLC_OPERATOR_TOKEN" in missing.output
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "operator-token").write_text(TOKEN + "\n")
    deeper = tmp_path / "some" / "where"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    found = run("deadlines", "list")
    assert found.exit_code == 0, found.output
    assert api.sent("GET", "/v1/deadlines").headers["authorization"] == f"Bearer {TOKEN}"
    wrong = run("deadlines", "list", "--token", "other")
    assert wrong.exit_code == 1
    assert "error (401): missing or wrong bearer token" in wrong.output


# -- partners and endpoints ----------------------------------------------------------------


ENDPOINT = {
    "id": "ep-1", "partner": "portal", "url": "https://portal.example.org/hooks",
    "event_types": ["deadline.reminder"], "regions": [], "cities": ["laval"],
    "description": "", "state": "active", "state_reason": None, "failing_since": None,
    "max_concurrency": None, "rate_per_second": None, "previous_secret_expires_at": None,
    "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z",
}  # fmt: skip


def test_endpoint_edit_sends_only_what_it_names(api: FakeApi) -> None:
    api.on("PATCH", "/v1/endpoints/ep-1", body=ENDPOINT)
    result = run("endpoints", "edit", "ep-1", "--no-filter", "--description", "portal")
    assert result.exit_code == 0, result.output
    assert body(api.sent("PATCH", "/v1/endpoints/ep-1")) == {
        "description": "portal",
        "regions": [],
        "cities": [],
    }
    assert "https://portal.example.org/hooks" in result.output


def test_replay_and_attempts(api: FakeApi) -> None:
    api.on("POST", "/v1/endpoints/ep-1/replay", 202, {"queued": 3})
    api.on(
        "GET",
        "/v1/endpoints/ep-1/attempts",
        body=[{"event_id": "e1", "attempt": 2, "at": "2026-11-25T10:00:01+00:00",
               "status": "retrying", "status_code": 503, "latency_ms": 12.3,
               "response_body": "busy", "error": None}],
    )  # fmt: skip
    replayed = run("endpoints", "replay", "ep-1", "--since", "2026-11-25T00:00:00+01:00")
    assert replayed.exit_code == 0, replayed.output
    assert "3 events queued for ep-1" in replayed.output
    assert body(api.sent("POST", "/v1/endpoints/ep-1/replay")) == {
        "since": "2026-11-25T00:00:00+01:00"
    }
    attempts = run("endpoints", "attempts", "ep-1")
    assert attempts.exit_code == 0, attempts.output
    row = attempts.output.splitlines()[1]
    assert row.split()[:3] == ["2026-11-25", "10:00:01", "UTC"]
    assert "503" in row
    assert "busy" in row


def test_show_gives_every_language_and_the_plan(api: FakeApi) -> None:
    api.on(
        "GET",
        "/v1/deadlines/report",
        body={"id": "report", "state": "active", "due_at": "2027-01-17T22:59:00+00:00",
              "title": {"en": "Report", "fr": "Rapport"}, "description": None,
              "reminders": ["-2d", "0d"], "delivery_hour": 14,
              "audience": {"all_members": False, "regions": ["Arab States"], "cities": []},
              "link": None},
    )  # fmt: skip
    result = run("deadlines", "show", "report")
    assert result.exit_code == 0, result.output
    rows = {line.split("  ")[0]: line for line in result.output.splitlines()}
    assert "en: Report | fr: Rapport" in rows["title"]
    assert "-2d 0d" in rows["reminders"]
    assert "14:00 local" in rows["delivery hour"]
    assert "region Arab States" in rows["audience"]
    assert "2027-01-17 22:59 UTC" in rows["due"]
