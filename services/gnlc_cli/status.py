"""Where every notice stands, from the status service's API (``GNLC_STATUS_API_URL``);
the not-submitted list and the cities' time zones from the scheduler's (``GNLC_API_URL``):

    gnlc-notify status deadline progress-report-2027
    gnlc-notify status deadline progress-report-2027 --not-submitted
    gnlc-notify status announcement idaeducation-2027
    gnlc-notify status city kathmandu
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gnlc_cli import output
from gnlc_cli.client import DEFAULT_API, DEFAULT_STATUS_API, Api
from gnlc_cli.operator import ApiUrl, Token

StatusApi = Annotated[
    str,
    typer.Option("--status-api", envvar="GNLC_STATUS_API_URL", help="Status API base URL."),
]
Limit = Annotated[int, typer.Option(min=1, max=100_000, help="Show at most this many rows.")]
PAGE = 1000

status = typer.Typer(
    help="Where every notice stands: per deadline, announcement or city.", no_args_is_help=True
)


def _pages(client: Api, path: str, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """Every row of a paged answer, up to ``limit``."""
    rows: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None and len(rows) < limit:
        page = client.request(
            "GET", path, params={**params, "limit": min(PAGE, limit - len(rows)), "offset": offset}
        )
        rows.extend(page["items"])
        offset = page["next_offset"]
    return rows


def _zones(api: str, token: str) -> dict[str, str]:
    """Each city's time zone, from the scheduler."""
    cities = Api.connect(api, token).request("GET", "/v1/cities")
    return {city["id"]: city["timezone"] for city in cities}


def _when(row: dict[str, Any], zones: dict[str, str]) -> str:
    """The state's moment in the city's local time (UTC where the city is not known)."""
    where = output.zone(zones.get(row.get("city_id") or ""))
    return output.local(row["state_time"], where) if where else output.utc(row["state_time"])


def _notices(rows: list[dict[str, Any]], zones: dict[str, str], *, what: str) -> None:
    output.table(
        ("city", what, "channel", "recipient", "state", "when (city's local time)", "reason"),
        (
            (
                row.get("city_id") or "",
                (row.get("step") if what == "step" else row.get("deadline_id"))
                or row.get("announcement_id")
                or "",
                row["channel"],
                row["recipient"],
                row["state"],
                _when(row, zones),
                (row.get("reason") or "")[:60],
            )
            for row in rows
        ),
    )


@status.command("deadline")
def deadline(
    deadline_id: Annotated[str, typer.Argument(help="The deadline's id.")],
    not_submitted: Annotated[
        bool, typer.Option("--not-submitted", help="List the cities that have not submitted.")
    ] = False,
    city: Annotated[str | None, typer.Option(help="Only this city.")] = None,
    limit: Limit = 10_000,
    status_api: StatusApi = DEFAULT_STATUS_API,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """A deadline's notices per city and step: the plan (channel ``schedule``), then each
    email and webhook notice, with its state and when it changed in the city's local time."""
    scheduler = Api.connect(api, token)
    if not_submitted:
        with output.working("reading who has not submitted"):
            missing = scheduler.request("GET", f"/v1/deadlines/{deadline_id}/not-submitted")
        output.table(
            ("city", "name", "time zone"),
            ((c["city_id"], c["name"], c["timezone"]) for c in missing),
        )
        output.line(f"{len(missing)} cities have not submitted")
        return
    where = (status_api, api, token)
    _show(where, f"/v1/status/deadlines/{deadline_id}", {"city": city}, limit, what="step")


@status.command("announcement")
def announcement(
    announcement_id: Annotated[str, typer.Argument(help="The announcement's id.")],
    city: Annotated[str | None, typer.Option(help="Only this city.")] = None,
    limit: Limit = 10_000,
    status_api: StatusApi = DEFAULT_STATUS_API,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """An announcement's notices per city."""
    where = (status_api, api, token)
    path = f"/v1/status/announcements/{announcement_id}"
    _show(where, path, {"city": city}, limit, what="announcement")


@status.command("city")
def city_notices(
    city_id: Annotated[str, typer.Argument(help="The city's id.")],
    since: Annotated[str | None, typer.Option(help="From this instant (RFC 3339).")] = None,
    limit: Limit = 200,
    status_api: StatusApi = DEFAULT_STATUS_API,
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """A city's notices over time, latest first (default: the last 30 days)."""
    where = (status_api, api, token)
    _show(where, f"/v1/status/cities/{city_id}", {"since": since}, limit, what="deadline")


def _show(
    where: tuple[str, str, str],
    path: str,
    params: dict[str, str | None],
    limit: int,
    *,
    what: str,
) -> None:
    """Read every page of ``path`` from the status API (the options given) and print the
    notices with each city's local time (its zone from the scheduler's API)."""
    status_api, api, token = where
    client = Api.connect(status_api, token, name="status")
    with output.working("reading the notices"):
        given = {name: value for name, value in params.items() if value}
        rows = _pages(client, path, given, limit)
        zones = _zones(api, token)
    _notices(rows, zones, what=what)
