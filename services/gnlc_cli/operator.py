"""Operator commands against the scheduler's API: the directory, deadlines, announcements
and what goes out next. Each prints the API's answer as a table, or every problem the API
named (exit 1)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from gnlc_cli import output, payloads
from gnlc_cli.client import DEFAULT_API, MERGE_PATCH, Api, fail

ApiUrl = Annotated[
    str, typer.Option("--api", envvar="GNLC_API_URL", help="Scheduler API base URL.")
]
Token = Annotated[
    str,
    typer.Option(
        envvar="GNLC_OPERATOR_TOKEN",
        help="Operator bearer token (default: .local/operator-token, written by the run command).",
        show_default=False,
    ),
]

cities = typer.Typer(help="The member-city directory.", no_args_is_help=True)
deadlines = typer.Typer(help="Deadlines and their reminder plans.", no_args_is_help=True)
announcements = typer.Typer(help="Announcements, now or scheduled.", no_args_is_help=True)

SHOWN_STEPS = 20


def build(make: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``make(...)``, a PayloadError becoming ``error: ...`` and exit 2."""
    try:
        return make(*args, **kwargs)
    except payloads.PayloadError as exc:
        raise fail(str(exc), 2) from None


def _title(texts: Any) -> str:
    if isinstance(texts, dict) and texts:
        return str(texts.get("en") or next(iter(texts.values())))
    return "" if texts is None else str(texts)


def _city_zones(api: Api) -> dict[str, tzinfo]:
    """City id -> time zone, from the directory; empty if it cannot be read."""
    try:
        with api.client(timeout=10) as client:
            response = client.get("/v1/cities")
        response.raise_for_status()
        found = {c["id"]: output.zone(c.get("timezone")) for c in response.json()}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):  # for display only
        return {}
    return {city: where for city, where in found.items() if where is not None}


AllMembers = Annotated[bool, typer.Option("--all", help="Every member city.")]
Regions = Annotated[list[str] | None, typer.Option("--region", help="A UNESCO region.")]
CityIds = Annotated[list[str] | None, typer.Option("--city", help="A city id.")]
Language = Annotated[
    str,
    typer.Option(
        "--language",
        help="Language of --title/--body/--description (--link is one link for every language; "
        "a link per language: link: {en: ..., fr: ...} in --from-file).",
    ),
]


# -- cities -------------------------------------------------------------------------------


@cities.command("import")
def import_cities(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or YAML.")],
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Import (add or update) cities from a CSV or YAML file: all rows or none.

    Every problem of every row is printed; any problem means nothing is imported (exit 1).
    """
    data = path.read_bytes()
    if not data.strip():
        raise fail(f"{path} is empty: nothing to import", 2)
    suffix = path.suffix.lower()
    kind = {".yaml": "application/yaml", ".yml": "application/yaml", ".json": "application/json"}
    client = Api.connect(api, token)
    with output.working(f"importing {path.name}"):
        result = client.request(
            "POST",
            "/v1/cities/import",
            content=data,
            content_type=kind.get(suffix, "text/csv"),
            timeout=300,
        )
    typer.echo(f"imported {result['imported']} cities")


@cities.command("list")
def list_cities(api: ApiUrl = DEFAULT_API, token: Token = "") -> None:
    """List the cities."""
    rows = Api.connect(api, token).request("GET", "/v1/cities")
    output.table(
        ("id", "name", "country", "region", "time zone", "language", "state"),
        (
            (
                c["id"],
                c["name"],
                c.get("country"),
                c.get("region"),
                c["timezone"],
                c["language"],
                "active" if c.get("active", True) else "inactive",
            )
            for c in rows
        ),
    )


# -- deadlines ----------------------------------------------------------------------------


def print_warnings(result: dict[str, Any]) -> None:
    """The audience's languages that have no text of their own, one line each."""
    for warning in result.get("warnings") or []:
        typer.echo(f"warning: {warning}")


def print_plan(result: dict[str, Any], zones: dict[str, tzinfo]) -> None:
    """What a deadline's save scheduled, and what it did not and why."""
    steps = sorted(result.get("scheduled") or [], key=lambda s: s["fire_at"])
    skipped = result.get("not_scheduled") or []
    summary = f"{result['deadline_id']}: {len(steps)} reminders scheduled"
    if "not_scheduled" in result:
        reasons = Counter(str(item.get("reason", "?")) for item in skipped)
        summary += f", {len(skipped)} not scheduled"
        if reasons:
            summary += " (" + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) + ")"
    typer.echo(summary)
    print_warnings(result)
    if steps:
        output.table(
            ("city", "step", "UTC", "city's local time"),
            (
                (
                    s["city_id"],
                    s["step"],
                    output.utc(s["fire_at"]),
                    output.local(s["fire_at"], zones.get(s["city_id"])),
                )
                for s in steps[:SHOWN_STEPS]
            ),
        )
        if len(steps) > SHOWN_STEPS:
            typer.echo(
                f"... and {len(steps) - SHOWN_STEPS} more "
                f"(gnlc-notify schedule --deadline {result['deadline_id']})"
            )
    if skipped:
        output.table(
            ("city", "step", "not scheduled because", "detail"),
            (
                (i.get("city_id"), i.get("step"), i.get("reason"), i.get("detail"))
                for i in sorted(skipped, key=lambda i: (str(i.get("city_id")), str(i.get("step"))))
            ),
            title="Not scheduled:",
        )


Title = Annotated[str | None, typer.Option(help="Title (in --language, default English).")]
Description = Annotated[str | None, typer.Option(help="Description (in --language).")]
Due = Annotated[datetime | None, typer.Option(help="Due moment, ISO 8601 with offset.")]
Remind = Annotated[
    list[str] | None, typer.Option(help="Offsets, repeatable: -30d -7d -1d 0d +3d (or -2h).")
]
Exact = Annotated[bool, typer.Option(help="Exact offsets from the due moment, no local hour.")]
Link = Annotated[str | None, typer.Option(help="Where to submit / read more.")]
FromFile = Annotated[
    Path | None,
    typer.Option(
        exists=True,
        dir_okay=False,
        help="YAML with the fields to set; texts per language (title: {en: ..., fr: ...}).",
    ),
]


@deadlines.command("add")
def add_deadline(
    deadline_id: Annotated[str, typer.Argument(help="Stable id, e.g. progress-report-2027.")],
    title: Title = None,
    description: Description = None,
    due: Due = None,
    remind: Remind = None,
    hour: Annotated[int, typer.Option(min=0, max=23, help="Local delivery hour of day steps.")] = 9,
    exact: Exact = False,
    all_members: AllMembers = False,
    region: Regions = None,
    city: CityIds = None,
    link: Link = None,
    language: Language = "en",
    from_file: FromFile = None,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Add a deadline; its reminders are planned for every city of the audience.

    Prints what was scheduled (UTC and the city's local time) and what was not, and why.
    """
    fields = build(payloads.from_file, from_file, deadline_id, "deadline") if from_file else {}
    changes = build(
        payloads.deadline_changes,
        language=language,
        title=title,
        description=description,
        due=due,
        remind=remind,
        hour=None if exact or "delivery_hour" in fields else hour,
        exact=exact,
        audience=payloads.audience(all_members, region, city),
        link=link,
    )
    body = build(payloads.new_deadline, deadline_id, changes, fields)
    client = Api.connect(api, token)
    result = client.request("POST", "/v1/deadlines", json=body)
    print_plan(result, _city_zones(client))


@deadlines.command("edit")
def edit_deadline(
    deadline_id: Annotated[str, typer.Argument()],
    title: Title = None,
    description: Description = None,
    due: Due = None,
    remind: Remind = None,
    hour: Annotated[
        int | None, typer.Option(min=0, max=23, help="Local delivery hour of day steps.")
    ] = None,
    exact: Exact = False,
    all_members: AllMembers = False,
    region: Regions = None,
    city: CityIds = None,
    link: Link = None,
    language: Language = "en",
    from_file: FromFile = None,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Change what is named, nothing else; pending reminders are planned again.

    A title in one language leaves the other languages as they are.
    """
    fields = build(payloads.from_file, from_file, deadline_id, "deadline") if from_file else {}
    changes = build(
        payloads.deadline_changes,
        language=language,
        title=title,
        description=description,
        due=due,
        remind=remind,
        hour=hour,
        exact=exact,
        audience=payloads.audience(all_members, region, city),
        link=link,
    )
    patch = payloads.merge(fields, changes)
    if not patch:
        raise fail("nothing to change: name a field (--title, --due, ...) or --from-file", 2)
    client = Api.connect(api, token)
    result = client.request(
        "PATCH",
        f"/v1/deadlines/{deadline_id}",
        content=_json(patch),
        content_type=MERGE_PATCH,
        missing="this scheduler cannot edit part of a deadline",
    )
    print_plan(result, _city_zones(client))


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


@deadlines.command("cancel")
def cancel_deadline(
    deadline_id: Annotated[str, typer.Argument()], api: ApiUrl = DEFAULT_API, token: Token = ""
) -> None:
    """Cancel a deadline and its pending reminders."""
    result = Api.connect(api, token).request("DELETE", f"/v1/deadlines/{deadline_id}")
    typer.echo(f"cancelled; {result['reminders_cancelled']} pending reminders dropped")


State = Annotated[str | None, typer.Option(help="Only this state (e.g. active, past, cancelled).")]


def _local_zone() -> tzinfo | None:
    return datetime.now().astimezone().tzinfo


@deadlines.command("list")
def list_deadlines(state: State = None, api: ApiUrl = DEFAULT_API, token: Token = "") -> None:
    """List deadlines: due moment in UTC and in this machine's time zone."""
    params = {"state": state} if state else None
    items = Api.connect(api, token).request("GET", "/v1/deadlines", params=params)
    here = _local_zone()
    output.table(
        ("id", "state", "due (UTC)", "due (local)", "reminders", "title"),
        (
            (
                item["id"],
                item.get("state"),
                output.utc(item["due_at"]),
                output.local(item["due_at"], here),
                " ".join(item.get("reminders") or []),
                _title(item.get("title")),
            )
            for item in items
            if not state or item.get("state") == state
        ),
    )


def _texts(value: Any) -> str:
    """``{en: A, fr: B}`` as ``en: A | fr: B``."""
    if isinstance(value, dict):
        return " | ".join(f"{language}: {text}" for language, text in value.items())
    return "" if value is None else str(value)


def _audience_text(audience: Any) -> str:
    if not isinstance(audience, dict):
        return str(audience)
    parts = ["all members"] if audience.get("all_members") else []
    parts += [f"region {r}" for r in audience.get("regions") or []]
    parts += [f"city {c}" for c in audience.get("cities") or []]
    return ", ".join(parts) or "(nobody)"


def _times(value: Any) -> str:
    return f"{output.utc(value)} ({output.local(value, _local_zone())})" if value else ""


@deadlines.command("show")
def show_deadline(
    deadline_id: Annotated[str, typer.Argument()], api: ApiUrl = DEFAULT_API, token: Token = ""
) -> None:
    """One deadline in full: texts in every language, plan, audience, state."""
    item = Api.connect(api, token).request("GET", f"/v1/deadlines/{deadline_id}")
    hour = item.get("delivery_hour")
    output.table(
        ("field", "value"),
        [
            ("id", item["id"]),
            ("state", item.get("state")),
            ("due", _times(item.get("due_at"))),
            ("title", _texts(item.get("title"))),
            ("description", _texts(item.get("description"))),
            ("reminders", " ".join(item.get("reminders") or [])),
            ("delivery hour", "exact offsets" if hour is None else f"{hour:02d}:00 local"),
            ("audience", _audience_text(item.get("audience"))),
            ("link", _texts(item.get("link"))),
        ],
    )


@deadlines.command("submit")
def submit(
    deadline_id: Annotated[str, typer.Argument()],
    city_id: Annotated[str, typer.Argument()],
    at: Annotated[datetime | None, typer.Option(help="When it was submitted.")] = None,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Record that a city submitted: no more reminders go to it for this deadline."""
    body = {"city_id": city_id, "submitted_at": at.isoformat() if at else None}
    result = Api.connect(api, token).request(
        "POST", f"/v1/deadlines/{deadline_id}/submissions", json=body
    )
    typer.echo(
        f"{city_id} submitted {deadline_id}; "
        f"{result['reminders_cancelled']} pending reminders dropped"
    )


# -- announcements ------------------------------------------------------------------------

Category = Annotated[str | None, typer.Option(help="event, award, workshop, news, call, other")]
At = Annotated[datetime | None, typer.Option(help="Publish later, at this moment.")]
Body = Annotated[str | None, typer.Option(help="Text (in --language, default English).")]


@announcements.command("publish")
def publish(
    announcement_id: Annotated[str, typer.Argument()],
    title: Title = None,
    body: Body = None,
    category: Category = None,
    at: At = None,
    all_members: AllMembers = False,
    region: Regions = None,
    city: CityIds = None,
    link: Link = None,
    language: Language = "en",
    from_file: FromFile = None,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Publish an announcement now, or schedule it with --at.

    Texts in several languages come from --from-file (title: {en: ..., fr: ...}).
    """
    fields = (
        build(payloads.from_file, from_file, announcement_id, "announcement") if from_file else {}
    )
    changes = build(
        payloads.announcement_changes,
        language=language,
        title=title,
        body=body,
        category=category,
        at=at,
        audience=payloads.audience(all_members, region, city),
        link=link,
    )
    payload = build(payloads.new_announcement, announcement_id, changes, fields)
    result = Api.connect(api, token).request("POST", "/v1/announcements", json=payload)
    _print_announcement(announcement_id, result)


def _print_announcement(announcement_id: str, result: dict[str, Any]) -> None:
    when = result.get("publish_at")
    typer.echo(
        f"{announcement_id} goes out at {output.utc(when)} ({output.local(when, _local_zone())})"
    )
    print_warnings(result)


@announcements.command("edit")
def edit_announcement(
    announcement_id: Annotated[str, typer.Argument()],
    title: Title = None,
    body: Body = None,
    category: Category = None,
    at: At = None,
    all_members: AllMembers = False,
    region: Regions = None,
    city: CityIds = None,
    link: Link = None,
    language: Language = "en",
    from_file: FromFile = None,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Change what is named in a scheduled announcement, nothing else."""
    fields = (
        build(payloads.from_file, from_file, announcement_id, "announcement") if from_file else {}
    )
    changes = build(
        payloads.announcement_changes,
        language=language,
        title=title,
        body=body,
        category=category,
        at=at,
        audience=payloads.audience(all_members, region, city),
        link=link,
    )
    patch = payloads.merge(fields, changes)
    if not patch:
        raise fail("nothing to change: name a field (--title, --body, --at, ...) or --from-file", 2)
    result = Api.connect(api, token).request(
        "PATCH",
        f"/v1/announcements/{announcement_id}",
        content=_json(patch),
        content_type=MERGE_PATCH,
        missing="this scheduler cannot edit part of an announcement",
    )
    _print_announcement(announcement_id, result)


@announcements.command("list")
def list_announcements(
    state: Annotated[
        str | None, typer.Option(help="Only this state (scheduled, published, withdrawn).")
    ] = None,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """List announcements: when they go (or went) out, in UTC and local time."""
    params = {"state": state} if state else None
    items = Api.connect(api, token).request(
        "GET",
        "/v1/announcements",
        params=params,
        missing="this scheduler cannot list announcements",
    )
    here = _local_zone()
    output.table(
        ("id", "state", "category", "goes out (UTC)", "goes out (local)", "title"),
        (
            (
                item["id"],
                item.get("state"),
                item.get("category"),
                output.utc(item.get("publish_at")),
                output.local(item.get("publish_at"), here),
                _title(item.get("title")),
            )
            for item in items
            if not state or item.get("state") == state
        ),
    )


@announcements.command("show")
def show_announcement(
    announcement_id: Annotated[str, typer.Argument()],
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """One announcement in full: texts in every language, audience, state."""
    item = Api.connect(api, token).request("GET", f"/v1/announcements/{announcement_id}")
    output.table(
        ("field", "value"),
        [
            ("id", item["id"]),
            ("state", item.get("state")),
            ("category", item.get("category")),
            ("goes out", _times(item.get("publish_at"))),
            ("published", _times(item.get("published_at"))),
            ("title", _texts(item.get("title"))),
            ("body", _texts(item.get("body"))),
            ("audience", _audience_text(item.get("audience"))),
            ("link", _texts(item.get("link"))),
        ],
    )


@announcements.command("withdraw")
def withdraw(
    announcement_id: Annotated[str, typer.Argument()],
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Withdraw a scheduled announcement before it goes out."""
    Api.connect(api, token).request("DELETE", f"/v1/announcements/{announcement_id}")
    typer.echo(f"{announcement_id} withdrawn")


# -- what comes next ----------------------------------------------------------------------


def schedule(
    deadline: Annotated[str | None, typer.Option(help="Only this deadline.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """What goes out next: who gets what, when (UTC and the city's local time)."""
    params: dict[str, Any] = {"limit": limit}
    if deadline:
        params["deadline_id"] = deadline
    client = Api.connect(api, token)
    with output.working("reading the schedule"):
        items = client.request("GET", "/v1/schedule", params=params)
    rows = []
    for item in output.track(items, "formatting"):
        where = output.zone(item.get("timezone"))
        rows.append(
            (
                output.utc(item["fire_at_utc"]),
                output.local(item["fire_at_utc"], where) if where else "",
                item.get("timezone"),
                item.get("deadline_id") or item.get("announcement_id"),
                item.get("step") or item.get("type"),
                item.get("city_id") or "audience",
            )
        )
    output.table(("UTC", "city's local time", "time zone", "what", "step", "who"), rows)
