"""An event type's JSON Schema as rows a person reads (pure): one row per field, with its
dotted path, its type in words, whether it is required, and its description and limits.
``$ref`` to ``$defs`` is followed; nested objects and arrays of objects get rows of their
own (``data.audience.regions``, ``items[]``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Schema = Mapping[str, Any]
#: How deep nested objects are shown (the schemas nest three levels).
MAX_DEPTH = 6


@dataclass(frozen=True)
class FieldRow:
    path: str
    type: str
    required: bool
    notes: str
    depth: int


def _resolve(node: Schema, root: Schema) -> Schema:
    """``node`` with its ``$ref`` (``#/$defs/name``) merged in: the local keys win."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return node
    target = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    return {**_resolve(target, root), **{k: v for k, v in node.items() if k != "$ref"}}


def type_of(node: Schema, root: Schema) -> str:
    """The type of a schema node in words: ``string (date-time)``, ``"1.0"``,
    ``array of string``, ``object: language tag → string``, ``one of: ...``."""
    node = _resolve(node, root)
    if "const" in node:
        return json.dumps(node["const"], ensure_ascii=False)
    if "enum" in node:
        return "one of " + ", ".join(json.dumps(v, ensure_ascii=False) for v in node["enum"])
    variants = node.get("anyOf") or node.get("oneOf")
    if variants and "type" not in node:
        kinds = [type_of(v, root) for v in variants if _resolve(v, root).get("type")]
        if kinds:
            return "one of: " + " | ".join(kinds)
    kind = node.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(str(k) for k in kind)
    if kind == "string" and node.get("format"):
        return f"string ({node['format']})"
    if kind == "array" and isinstance(node.get("items"), Mapping):
        return f"array of {type_of(node['items'], root)}"
    if kind == "object" and isinstance(node.get("additionalProperties"), Mapping):
        names = node.get("propertyNames") or {}
        key = "language tag" if "[a-z]{2,3}" in str(names.get("pattern", "")) else "name"
        return f"object: {key} → {type_of(node['additionalProperties'], root)}"
    return str(kind)


def _range(low: Any, high: Any, unit: str) -> str | None:
    if low == 1 and high is None and unit == "characters":
        return "not empty"
    if low is not None and high is not None:
        return f"{low} to {high} {unit}"
    if low is not None:
        return f"at least {low} {unit}"
    if high is not None:
        return f"at most {high} {unit}"
    return None


def notes_of(node: Schema, root: Schema) -> str:
    """Its description, then its limits (lengths, counts, bounds, pattern, default)."""
    node = _resolve(node, root)
    limits = [
        _range(node.get("minLength"), node.get("maxLength"), "characters"),
        _range(node.get("minItems"), node.get("maxItems"), "items"),
        _range(node.get("minProperties"), node.get("maxProperties"), "entries"),
        _range(node.get("minimum"), node.get("maximum"), "(bounds)"),
    ]
    parts = [limit for limit in limits if limit]
    if node.get("pattern") and node.get("format") != "date-time":
        parts.append(f"pattern {node['pattern']}")
    if "default" in node:
        parts.append(f"default {json.dumps(node['default'])}")
    description = str(node.get("description") or "").strip()
    if description and parts:
        return f"{description.rstrip('.')}. Limits: {'; '.join(parts)}."
    return description or (f"Limits: {'; '.join(parts)}." if parts else "")


def field_rows(schema: Schema) -> list[FieldRow]:
    """Every field of an object schema, depth first, in the schema's order."""
    rows: list[FieldRow] = []

    def walk(node: Schema, prefix: str, depth: int) -> None:
        node = _resolve(node, schema)
        required = set(node.get("required", ()))
        for name, child in (node.get("properties") or {}).items():
            path = f"{prefix}{name}"
            rows.append(
                FieldRow(
                    path,
                    type_of(child, schema),
                    name in required,
                    notes_of(child, schema),
                    depth,
                )
            )
            resolved = _resolve(child, schema)
            if depth >= MAX_DEPTH:
                continue
            if resolved.get("properties"):
                walk(resolved, f"{path}.", depth + 1)
            items = resolved.get("items")
            if isinstance(items, Mapping) and _resolve(items, schema).get("properties"):
                walk(items, f"{path}[].", depth + 1)

    walk(schema, "", 0)
    return rows


def pretty(value: Any) -> str:
    """JSON as a person reads it: indented, non-ASCII kept."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def pretty_text(text: str) -> str:
    """A JSON text indented, or the text as it is when it is not JSON."""
    try:
        return pretty(json.loads(text))
    except ValueError:
        return text
