"""What the CLI sends, from options and files (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gnlc_cli.payloads import (
    PayloadError,
    deadline_changes,
    from_file,
    merge,
    new_announcement,
    new_deadline,
)

DUE = datetime(2027, 1, 17, 23, 59, tzinfo=UTC)
NONE: dict[str, Any] = {
    "language": "en",
    "title": None,
    "description": None,
    "due": None,
    "remind": None,
    "hour": None,
    "exact": False,
    "audience": None,
    "link": None,
}


@pytest.mark.parametrize(
    ("options", "wanted"),
    [
        ({}, {}),
        ({"title": "Report"}, {"title": {"en": "Report"}}),
        ({"title": "Rapport", "language": "fr"}, {"title": {"fr": "Rapport"}}),
        ({"due": DUE}, {"due_at": "2027-01-17T23:59:00+00:00"}),
        ({"remind": ["-2d"]}, {"reminders": ["-2d"]}),
        ({"hour": 14}, {"delivery_hour": 14}),
        ({"hour": 0}, {"delivery_hour": 0}),
        ({"exact": True}, {"delivery_hour": None}),
        ({"link": "https://x.example.org"}, {"link": "https://x.example.org"}),
    ],
)
def test_deadline_changes_name_only_what_was_given(
    options: dict[str, Any], wanted: dict[str, Any]
) -> None:
    assert deadline_changes(**{**NONE, **options}) == wanted


@pytest.mark.parametrize(
    ("base", "changes", "wanted"),
    [
        ({}, {"a": 1}, {"a": 1}),
        (
            {"title": {"en": "A", "fr": "B"}},
            {"title": {"fr": "C"}},
            {"title": {"en": "A", "fr": "C"}},
        ),
        ({"title": {"en": "A"}}, {"title": "plain"}, {"title": "plain"}),
        ({"x": 1}, {"x": None}, {"x": None}),
    ],
)
def test_merge(base: dict[str, Any], changes: dict[str, Any], wanted: dict[str, Any]) -> None:
    assert merge(base, changes) == wanted


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("title: Plain\n", {"title": {"en": "Plain"}}),
        ("id: d\ntitle: {en: A, fr: B}\n", {"title": {"en": "A", "fr": "B"}}),
        ("due_at: 2027-01-17T10:00:00+01:00\n", {"due_at": "2027-01-17T10:00:00+01:00"}),
        ("body: {en: a, fr: b}\nlink: {en: 'https://e.org'}\n",
         {"body": {"en": "a", "fr": "b"}, "link": {"en": "https://e.org"}}),
    ],
)  # fmt: skip
def test_from_file(tmp_path: Path, text: str, wanted: dict[str, Any]) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(text, encoding="utf-8")
    assert from_file(path, "d", "deadline") == wanted


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty"),
        ("- a\n- b\n", "must hold a mapping"),
        ("title: [a, b]\n", "title: give a text"),
        ("title: {en: 3}\n", "title: the text for en is not a string"),
        ("id: other\n", "id: the file says 'other'"),
        ("title: {en: a\n", "is not valid YAML"),
    ],
)
def test_from_file_refusals(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PayloadError, match=problem):
        from_file(path, "d", "deadline")


def test_whole_objects_say_what_is_missing() -> None:
    with pytest.raises(PayloadError, match="missing --title, --due, --all/--region/--city"):
        new_deadline("d", {}, {})
    body = new_deadline("d", {"due_at": "x"}, {"title": {"fr": "T"}, "audience": {"all": 1}})
    assert body == {"id": "d", "title": {"fr": "T"}, "audience": {"all": 1}, "due_at": "x"}
    with pytest.raises(PayloadError, match="missing --body, --category"):
        new_announcement("a", {"title": {"en": "T"}, "audience": {"all": 1}}, {})
