"""Operator commands: they call the scheduler's HTTP API and print its answer or its error."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml

ApiUrl = Annotated[
    str, typer.Option("--api", envvar="GNLC_API_URL", help="Scheduler API base URL.")
]
Token = Annotated[
    str,
    typer.Option(envvar="GNLC_OPERATOR_TOKEN", help="Operator bearer token.", show_default=False),
]
DEFAULT_API = "http://127.0.0.1:8100"

cities = typer.Typer(help="The member-city directory.", no_args_is_help=True)
deadlines = typer.Typer(help="Deadlines and their reminder plans.", no_args_is_help=True)
announcements = typer.Typer(help="Announcements, now or scheduled.", no_args_is_help=True)


def call(
    method: str,
    api: str,
    path: str,
    token: str,
    *,
    json: Any = None,
    content: bytes | None = None,
    content_type: str | None = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """One API call; a refusal prints the API's own message and exits 1."""
    if not token.strip():
        typer.echo("error: no operator token: set GNLC_OPERATOR_TOKEN or pass --token", err=True)
        raise typer.Exit(2)
    headers = {"authorization": f"Bearer {token.strip()}"}
    if content_type:
        headers["content-type"] = content_type
    try:
        response = httpx.request(
            method,
            f"{api.rstrip('/')}{path}",
            json=json,
            content=content,
            params=params,
            headers=headers,
            timeout=30,
        )
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach {api}: {exc}", err=True)
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        typer.echo(f"error ({response.status_code}): {_detail(response)}", err=True)
        raise typer.Exit(1)
    return response.json() if response.content else None


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text
    if isinstance(detail, list):  # FastAPI's field-by-field validation errors
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg')}"
            for item in detail
        )
    return str(detail)


def _audience(all_members: bool, region: list[str] | None, city: list[str] | None) -> Any:
    return {"all_members": all_members, "regions": region or [], "cities": city or []}


AllMembers = Annotated[bool, typer.Option("--all", help="Every member city.")]
Regions = Annotated[list[str] | None, typer.Option("--region", help="A UNESCO region.")]
CityIds = Annotated[list[str] | None, typer.Option("--city", help="A city id.")]


# -- cities -------------------------------------------------------------------------------


@cities.command("import")
def import_cities(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or YAML.")],
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Import (add or update) cities from a CSV or YAML file: all rows or none."""
    kind = "text/csv" if path.suffix.lower() == ".csv" else "application/yaml"
    result = call(
        "POST", api, "/v1/cities/import", token, content=path.read_bytes(), content_type=kind
    )
    typer.echo(f"imported {result['imported']} cities")


@cities.command("list")
def list_cities(api: ApiUrl = DEFAULT_API, token: Token = "") -> None:
    """List the cities."""
    for city in call("GET", api, "/v1/cities", token):
        state = "" if city["active"] else "  (inactive)"
        typer.echo(
            f"{city['id']:<20} {city['timezone']:<28} {city['language']:<6} {city['name']}{state}"
        )


# -- deadlines ----------------------------------------------------------------------------


def _deadline_body(
    deadline_id: str,
    title: str | None,
    due: datetime | None,
    remind: list[str] | None,
    hour: int | None,
    exact: bool,
    audience: Any,
    link: str | None,
    from_file: Path | None,
) -> dict[str, Any]:
    if from_file is not None:
        body: dict[str, Any] = yaml.safe_load(from_file.read_text(encoding="utf-8"))
        body.setdefault("id", deadline_id)
        return body
    if title is None or due is None:
        typer.echo("error: --title and --due are needed (or --from-file)", err=True)
        raise typer.Exit(2)
    body = {
        "id": deadline_id,
        "title": {"en": title},
        "due_at": due.isoformat(),
        "audience": audience,
        "delivery_hour": None if exact else hour,
        "link": link,
    }
    if remind:
        body["reminders"] = remind
    return body


def _print_plan(result: dict[str, Any]) -> None:
    steps = sorted(result["scheduled"], key=lambda s: s["fire_at"])
    typer.echo(f"{result['deadline_id']}: {len(steps)} reminders scheduled")
    for step in steps[:20]:
        typer.echo(f"  {step['fire_at']}  {step['city_id']:<20} {step['step']}")
    if len(steps) > 20:
        typer.echo(f"  ... and {len(steps) - 20} more (gnlc-notify schedule)")


Title = Annotated[str | None, typer.Option(help="English title.")]
Due = Annotated[datetime | None, typer.Option(help="Due moment, ISO 8601 with offset.")]
Remind = Annotated[
    list[str] | None, typer.Option(help="Offsets, repeatable: -30d -7d -1d 0d +3d (or -2h).")
]
Hour = Annotated[int, typer.Option(min=0, max=23, help="Local delivery hour of day steps.")]
Exact = Annotated[bool, typer.Option(help="Exact offsets from the due moment, no local hour.")]
Link = Annotated[str | None, typer.Option(help="Where to submit.")]
FromFile = Annotated[
    Path | None, typer.Option(exists=True, dir_okay=False, help="The deadline as YAML/JSON.")
]


@deadlines.command("add")
def add_deadline(
    deadline_id: Annotated[str, typer.Argument(help="Stable id, e.g. progress-report-2027.")],
    title: Title = None,
    due: Due = None,
    remind: Remind = None,
    hour: Hour = 9,
    exact: Exact = False,
    all_members: AllMembers = False,
    region: Regions = None,
    city: CityIds = None,
    link: Link = None,
    from_file: FromFile = None,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Add a deadline; its reminders are planned for every city of the audience."""
    body = _deadline_body(
        deadline_id,
        title,
        due,
        remind,
        hour,
        exact,
        _audience(all_members, region, city),
        link,
        from_file,
    )
    _print_plan(call("POST", api, "/v1/deadlines", token, json=body))


@deadlines.command("edit")
def edit_deadline(
    deadline_id: Annotated[str, typer.Argument()],
    title: Title = None,
    due: Due = None,
    remind: Remind = None,
    hour: Hour = 9,
    exact: Exact = False,
    all_members: AllMembers = False,
    region: Regions = None,
    city: CityIds = None,
    link: Link = None,
    from_file: FromFile = None,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Replace a deadline; pending reminders are planned again."""
    body = _deadline_body(
        deadline_id,
        title,
        due,
        remind,
        hour,
        exact,
        _audience(all_members, region, city),
        link,
        from_file,
    )
    _print_plan(call("PUT", api, f"/v1/deadlines/{deadline_id}", token, json=body))


@deadlines.command("cancel")
def cancel_deadline(
    deadline_id: Annotated[str, typer.Argument()], api: ApiUrl = DEFAULT_API, token: Token = ""
) -> None:
    """Cancel a deadline and its pending reminders."""
    result = call("DELETE", api, f"/v1/deadlines/{deadline_id}", token)
    typer.echo(f"cancelled; {result['reminders_cancelled']} pending reminders dropped")


@deadlines.command("list")
def list_deadlines(api: ApiUrl = DEFAULT_API, token: Token = "") -> None:
    """List deadlines."""
    for item in call("GET", api, "/v1/deadlines", token):
        typer.echo(f"{item['due_at']}  {item['state']:<9}  {item['id']}")


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
    result = call("POST", api, f"/v1/deadlines/{deadline_id}/submissions", token, json=body)
    typer.echo(
        f"{city_id} submitted {deadline_id}; "
        f"{result['reminders_cancelled']} pending reminders dropped"
    )


# -- announcements ------------------------------------------------------------------------


@announcements.command("publish")
def publish(
    announcement_id: Annotated[str, typer.Argument()],
    title: Annotated[str, typer.Option(help="English title.")],
    body: Annotated[str, typer.Option(help="English text.")],
    category: Annotated[str, typer.Option(help="event, award, workshop, news, call, other")],
    at: Annotated[datetime | None, typer.Option(help="Publish later, at this moment.")] = None,
    all_members: AllMembers = False,
    region: Regions = None,
    city: CityIds = None,
    link: Link = None,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Publish an announcement now, or schedule it with --at."""
    payload = {
        "id": announcement_id,
        "category": category,
        "title": {"en": title},
        "body": {"en": body},
        "audience": _audience(all_members, region, city),
        "publish_at": at.isoformat() if at else None,
        "link": link,
    }
    result = call("POST", api, "/v1/announcements", token, json=payload)
    typer.echo(f"{announcement_id} goes out at {result['publish_at']}")


@announcements.command("withdraw")
def withdraw(
    announcement_id: Annotated[str, typer.Argument()],
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Withdraw a scheduled announcement before it goes out."""
    call("DELETE", api, f"/v1/announcements/{announcement_id}", token)
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
    for item in call("GET", api, "/v1/schedule", token, params=params):
        local = f"{item['fire_at_local']} {item['timezone']}" if item["fire_at_local"] else ""
        what = item["deadline_id"] or item["announcement_id"]
        who = item["city_id"] or "audience"
        typer.echo(f"{item['fire_at_utc']}  {what}  {item['step'] or item['type']}  {who}  {local}")
