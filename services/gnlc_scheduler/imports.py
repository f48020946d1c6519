"""Reading a directory upload (CSV, YAML or JSON) into cities, bounded: it runs in a worker
thread (``asyncio.to_thread``), on a body the API has already limited in bytes; rows are
limited by ``MAX_CITIES``; YAML anchors and aliases (which can expand a few hundred bytes
into millions of items) are refused, and so is nesting deeper than a directory has."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from gnlc_core.directory import MAX_CITIES, Directory, DirectoryError, Problem, parse_rows, read_csv

#: A list of cities, each a mapping whose ``contacts`` may be a list: three levels, and
#: ``{cities: [...]}`` around it a fourth.
MAX_DEPTH = 4
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENING = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSING = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def read_directory(body: bytes, content_type: str, *, limit: int = MAX_CITIES) -> Directory:
    """A directory upload as CSV (``text/csv``), JSON (``application/json``) or YAML (a
    list of cities, or ``{cities: [...]}``); raises ``DirectoryError`` naming every
    problem."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DirectoryError([Problem((), f"the body is not UTF-8: {exc}")]) from None
    if "csv" in content_type:
        return read_csv(text, limit=limit)
    if not text.strip():
        raise DirectoryError([Problem((), "the body is empty", "missing")])
    loaded = _json(text) if "json" in content_type else _yaml(text)
    items = loaded.get("cities") if isinstance(loaded, dict) else loaded
    if not isinstance(items, list):
        raise DirectoryError("the body must be a list of cities (or {cities: [...]})")
    if len(items) > limit:
        raise DirectoryError(f"more than {limit} cities; import them in parts")
    problems: list[Problem] = []
    rows = list(_rows(items, problems))
    try:
        directory = parse_rows(rows, first_line=1, label="item", limit=limit)
    except DirectoryError as exc:
        problems.extend(exc.problems)
    if problems:
        raise DirectoryError(problems)
    return directory


def _rows(items: list[Any], problems: list[Problem]) -> Iterator[dict[str, str | None]]:
    for number, item in enumerate(items, start=1):
        where = f"item {number}"
        if not isinstance(item, dict):
            problems.append(Problem((where,), "a city must be a mapping of column to value"))
            yield {}
            continue
        row: dict[str, str | None] = {}
        for key, value in item.items():
            if (
                key in ("contacts", "contact_email", "languages")
                and isinstance(value, list)
                and all(_scalar(v) for v in value)
            ):
                row["languages" if key == "languages" else "contact_email"] = ";".join(
                    str(v) for v in value
                )
                continue
            if not _scalar(value):
                problems.append(Problem((where, str(key)), "must be a single value"))
                continue
            row["contact_email" if key == "contacts" else str(key)] = (
                None if value is None else str(value)
            )
        yield row


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise DirectoryError(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise DirectoryError(f"the body is not valid JSON: {exc}") from None


def _yaml(text: str) -> Any:
    try:
        depth = 0
        for token in yaml.scan(text, Loader=_SAFE_LOADER):
            if isinstance(token, yaml.AliasToken | yaml.AnchorToken):
                raise DirectoryError("YAML anchors and aliases (&name, *name) are not allowed")
            if isinstance(token, _OPENING):
                depth += 1
                if depth > MAX_DEPTH:
                    raise DirectoryError(f"nested more than {MAX_DEPTH} levels deep")
            elif isinstance(token, _CLOSING):
                depth -= 1
        return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise DirectoryError(f"the body is not valid YAML or JSON: {exc}") from None
