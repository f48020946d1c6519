"""An event type's JSON Schema as rows a person reads (``gnlc_console.catalog_view``), tabled."""

from __future__ import annotations

from typing import Any

import pytest

from gnlc_console.catalog_view import field_rows, notes_of, pretty_text, type_of
from gnlc_core.catalog import catalog

ROOT: dict[str, Any] = {
    "$defs": {
        "slug": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 63},
        "url": {"type": "string", "maxLength": 2000},
        "texts": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"},
            "additionalProperties": {"type": "string"},
            "minProperties": 1,
            "maxProperties": 16,
        },
    }
}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"const": "1.0"}, '"1.0"'),
        ({"enum": ["a", "b"]}, 'one of "a", "b"'),
        ({"type": "string", "format": "date-time"}, "string (date-time)"),
        ({"type": "array", "items": {"$ref": "#/$defs/slug"}}, "array of string"),
        ({"$ref": "#/$defs/texts"}, "object: language tag → string"),
        ({"anyOf": [{"$ref": "#/$defs/url"}, {"type": "integer"}]}, "one of: string | integer"),
        ({"type": ["string", "null"]}, "string or null"),
        ({}, "any"),
    ],
)
def test_the_type_in_words(node: dict[str, Any], expected: str) -> None:
    assert type_of(node, ROOT) == expected


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": "string"}, ""),
        ({"type": "string", "minLength": 1}, "Limits: not empty."),
        ({"$ref": "#/$defs/slug"}, "Limits: at most 63 characters; pattern ^[a-z]+$."),
        (
            {"type": "array", "maxItems": 20, "description": "Regions."},
            "Regions. Limits: at most 20 items.",
        ),
        (
            {"type": "integer", "minimum": 0, "default": 0},
            "Limits: at least 0 (bounds); default 0.",
        ),
        ({"$ref": "#/$defs/texts", "description": "Titles"}, "Titles. Limits: 1 to 16 entries."),
        ({"type": "string", "format": "date-time", "pattern": "^x$"}, ""),  # the format says it
    ],
)
def test_the_notes_say_the_meaning_then_the_limits(node: dict[str, Any], expected: str) -> None:
    assert notes_of(node, ROOT) == expected


def test_every_field_of_a_published_schema_gets_a_row_nested_ones_indented() -> None:
    rows = {r.path: r for r in field_rows(catalog()["deadline.reminder"].schema)}
    assert {"id", "data", "data.deadline_id", "data.audience.cities"} <= set(rows)
    assert rows["data.deadline_id"].required
    assert not rows["subject"].required
    assert (rows["id"].depth, rows["data.due_at"].depth, rows["data.audience.regions"].depth) == (
        0,
        1,
        2,
    )
    assert rows["data.due_at"].type == "string (date-time)"


def test_arrays_of_objects_get_rows_of_their_own() -> None:
    schema = {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["n"],
                    "properties": {"n": {"type": "integer"}},
                },
            }
        },
    }
    assert [(r.path, r.required, r.depth) for r in field_rows(schema)] == [
        ("items", True, 0),
        ("items[].n", True, 1),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [('{"a":1}', '{\n  "a": 1\n}'), ('"é"', '"é"'), ("not json", "not json")],
)
def test_bodies_are_shown_indented_when_they_are_json(text: str, expected: str) -> None:
    assert pretty_text(text) == expected
