"""The JSON Schemas in schemas/ and the pydantic models must agree, both ways."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from gnlc_core.directory import load_csv
from gnlc_core.events import (
    ALL_EVENT_TYPES,
    AnnouncementPublished,
    Audience,
    DeadlineSubmitted,
    announcement_event,
    encode_event,
    envelope,
    submission_event,
)
from gnlc_core.settings import SAMPLE_DIRECTORY
from gnlc_scheduler.deadlines import Deadline
from gnlc_scheduler.store import reminder_rows

DIRECTORY = load_csv(SAMPLE_DIRECTORY)
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def validator(event_type: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def examples(kind: str) -> list[tuple[str, Path]]:
    return [
        (event_type, path)
        for event_type in sorted(ALL_EVENT_TYPES)
        for path in sorted((SCHEMAS / "examples" / event_type / kind).glob("*.json"))
    ]


def test_every_event_type_has_a_schema_and_examples() -> None:
    files = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert files == set(ALL_EVENT_TYPES)
    for event_type in ALL_EVENT_TYPES:
        assert any(e == event_type for e, _ in examples("valid"))
        assert any(e == event_type for e, _ in examples("invalid"))


@pytest.mark.parametrize(("event_type", "path"), examples("valid"), ids=lambda v: str(v)[-40:])
def test_valid_examples_pass_schema_and_model(event_type: str, path: Path) -> None:
    raw = path.read_bytes()
    validator(event_type).validate(json.loads(raw))
    event = ALL_EVENT_TYPES[event_type].model_validate_json(raw)
    assert event.type == event_type
    # What the code writes back out is valid too.
    validator(event_type).validate(json.loads(encode_event(event)))


@pytest.mark.parametrize(("event_type", "path"), examples("invalid"), ids=lambda v: str(v)[-40:])
def test_invalid_examples_fail_schema_and_model(event_type: str, path: Path) -> None:
    raw = path.read_bytes()
    assert list(validator(event_type).iter_errors(json.loads(raw))), "schema accepted it"
    with pytest.raises(ValidationError):
        ALL_EVENT_TYPES[event_type].model_validate_json(raw)


@pytest.mark.parametrize(
    "link",
    [
        None,
        "https://example.org/report",  # one link for every reader
        {"en": "https://example.org/report", "fr": "https://example.org/fr/rapport"},
    ],
)
def test_events_the_scheduler_emits_match_the_schema(link: str | dict[str, str] | None) -> None:
    deadline = Deadline(
        link=link,
        id="progress-report-2027",
        title={"en": "Biennial progress report", "fr": "Rapport d'étape"},
        due_at=datetime(2027, 1, 17, 23, 59, tzinfo=UTC),
        audience=Audience(regions=("Africa",), cities=("kathmandu",)),
        reminders=("-30d", "-7d", "-1d", "0d", "+3d", "-90m"),
    )
    check = validator("deadline.reminder")
    rows = reminder_rows(
        deadline,
        DIRECTORY.resolve(deadline.audience),
        now=datetime(2026, 1, 1, tzinfo=UTC),
        grace=timedelta(hours=1),
    )
    assert len(rows) > 10
    for row in rows:
        event = envelope(
            row["type"],
            event_id=row["event_id"],
            data=row["data"],
            time=row["fire_at"],
            partition_key=row["partition_key"],
            subject=f"deadlines/{row['deadline_id']}",
        )
        check.validate(json.loads(encode_event(event)))
    announcement = announcement_event(
        AnnouncementPublished(
            announcement_id="education-day",
            category="event",
            title={"en": "International Day of Education"},
            body={"en": "24 January"},
            audience=Audience(all_members=True),
            published_at=datetime(2027, 1, 20, 7, tzinfo=UTC),
            link=link,
        )
    )
    assert announcement.data.link == link
    validator("announcement.published").validate(json.loads(encode_event(announcement)))
    submitted = submission_event(
        DeadlineSubmitted(
            deadline_id="progress-report-2027",
            city_id="kathmandu",
            submitted_at=datetime(2027, 1, 12, tzinfo=UTC),
            source="operator",
        ),
        source="/gnlc-notify/scheduler",
    )
    validator("deadline.submitted").validate(json.loads(encode_event(submitted)))


def test_event_ids_are_deterministic_per_deadline_city_and_step() -> None:
    deadline = Deadline(
        id="survey",
        title={"en": "Survey"},
        due_at=datetime(2027, 3, 1, tzinfo=UTC),
        audience=Audience(cities=("kathmandu", "laval")),
        reminders=("-1d",),
    )
    cities = DIRECTORY.resolve(deadline.audience)
    now = datetime(2027, 1, 1, tzinfo=UTC)
    first = reminder_rows(deadline, cities, now=now, grace=timedelta(0))
    again = reminder_rows(deadline, cities, now=now, grace=timedelta(0))
    assert [r["event_id"] for r in first] == [r["event_id"] for r in again]
    assert len({r["event_id"] for r in first}) == 2  # one per city
    moved = deadline.model_copy(update={"due_at": datetime(2027, 3, 2, tzinfo=UTC)})
    other = reminder_rows(moved, cities, now=now, grace=timedelta(0))
    assert not {r["event_id"] for r in first} & {r["event_id"] for r in other}
