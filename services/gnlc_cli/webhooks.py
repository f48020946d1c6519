"""Partners and their webhook endpoints, against the webhook service's API
(``GNLC_WEBHOOK_API_URL``), so a partner is onboarded without raw HTTP:

    gnlc-notify partners add city-portal --name "City portal"      # prints its API token
    gnlc-notify endpoints add --partner city-portal --url https://... --event-type deadline.reminder
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from gnlc_cli import output
from gnlc_cli.client import DEFAULT_WEBHOOK_API, Api, compact, fail
from gnlc_cli.operator import Token
from gnlc_core.events import EVENT_TYPES

WebhookApi = Annotated[
    str,
    typer.Option("--api", envvar="GNLC_WEBHOOK_API_URL", help="Webhook service API base URL."),
]

partners = typer.Typer(help="Partner systems and their API tokens.", no_args_is_help=True)
endpoints = typer.Typer(
    help="Webhook endpoints: register, edit, pause, secrets, delivery log, replay.",
    no_args_is_help=True,
)


def _api(base: str, token: str) -> Api:
    return Api.connect(base, token, name="webhook")


# -- partners -----------------------------------------------------------------------------


@partners.command("add")
def add_partner(
    partner_id: Annotated[str, typer.Argument(help="Stable id, e.g. city-portal.")],
    name: Annotated[str, typer.Option(help="What the partner is called.")],
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """Register a partner; its API token is printed once (only its hash is kept)."""
    result = _api(api, token).request("POST", "/v1/partners", json={"id": partner_id, "name": name})
    typer.echo(f"partner {result['id']} registered; its API token (shown once):")
    typer.echo(result["token"])


@partners.command("list")
def list_partners(api: WebhookApi = DEFAULT_WEBHOOK_API, token: Token = "") -> None:
    """List partners."""
    rows = _api(api, token).request("GET", "/v1/partners")
    output.table(
        ("id", "name", "has token", "created (UTC)"),
        (
            (p["id"], p["name"], "yes" if p["has_token"] else "no", output.utc(p["created_at"]))
            for p in rows
        ),
    )


@partners.command("token")
def partner_token(
    partner_id: Annotated[str, typer.Argument()],
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """Issue a new API token to a partner; the old one stops working."""
    result = _api(api, token).request("POST", f"/v1/partners/{partner_id}/token")
    typer.echo(f"new API token of {result['id']} (shown once; the old one no longer works):")
    typer.echo(result["token"])


# -- endpoints ----------------------------------------------------------------------------

EventTypes = Annotated[
    list[str] | None,
    typer.Option("--event-type", help="deadline.reminder, announcement.published (repeatable)."),
]
Regions = Annotated[list[str] | None, typer.Option("--region", help="Only this region.")]
Cities = Annotated[list[str] | None, typer.Option("--city", help="Only this city id.")]
Description = Annotated[str | None, typer.Option(help="A note for people.")]
Concurrency = Annotated[
    int | None, typer.Option(min=1, max=256, help="Requests in flight to this endpoint.")
]
Rate = Annotated[float | None, typer.Option(min=0.001, help="Requests per second at most.")]
EndpointId = Annotated[str, typer.Argument(help="Endpoint id (ep-...).")]
DEFAULT_TYPES = tuple(EVENT_TYPES)


def _show(endpoint: dict[str, Any]) -> None:
    here = datetime.now().astimezone().tzinfo
    rows = [
        ("id", endpoint["id"]),
        ("partner", endpoint["partner"]),
        ("url", endpoint["url"]),
        ("state", endpoint["state"] + (f" ({r})" if (r := endpoint.get("state_reason")) else "")),
        ("event types", ", ".join(endpoint["event_types"])),
        ("regions", ", ".join(endpoint["regions"]) or "(all)"),
        ("cities", ", ".join(endpoint["cities"]) or "(all)"),
        ("description", endpoint.get("description") or ""),
        ("max concurrency", endpoint.get("max_concurrency") or "(default)"),
        ("rate per second", endpoint.get("rate_per_second") or "(default)"),
    ]
    for field, label in (
        ("failing_since", "failing since"),
        ("previous_secret_expires_at", "old secret signs until"),
        ("created_at", "created"),
        ("updated_at", "updated"),
    ):
        if endpoint.get(field):
            when = endpoint[field]
            rows.append((label, f"{output.utc(when)} ({output.local(when, here)})"))
    output.table(("field", "value"), rows)


@endpoints.command("add")
def add_endpoint(
    url: Annotated[str, typer.Option(help="Where deliveries go (https://...).")],
    partner: Annotated[str, typer.Option(help="Whose endpoint (a partner id).")],
    event_type: EventTypes = None,
    region: Regions = None,
    city: Cities = None,
    description: Description = None,
    max_concurrency: Concurrency = None,
    rate: Rate = None,
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """Subscribe a URL to event types (default: all); prints its whsec_ signing secret."""
    body = compact(
        {
            "url": url,
            "partner": partner,
            "event_types": list(event_type or DEFAULT_TYPES),
            "regions": region,
            "cities": city,
            "description": description,
            "max_concurrency": max_concurrency,
            "rate_per_second": rate,
        }
    )
    result = _api(api, token).request("POST", "/v1/endpoints", json=body)
    _show(result)
    typer.echo(
        f"signing secret (give it to the partner; also: endpoints show {result['id']} --secret):"
    )
    typer.echo(result["secret"])


@endpoints.command("list")
def list_endpoints(
    partner: Annotated[str | None, typer.Option(help="Only this partner's.")] = None,
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """List endpoints (every partner's, or one partner's)."""
    rows = _api(api, token).request("GET", "/v1/endpoints", params=compact({"partner": partner}))
    output.table(
        ("id", "partner", "state", "url", "event types", "filter"),
        (
            (
                e["id"],
                e["partner"],
                e["state"],
                e["url"],
                ", ".join(e["event_types"]),
                ", ".join([*e["regions"], *e["cities"]]) or "(all)",
            )
            for e in rows
        ),
    )


@endpoints.command("show")
def show_endpoint(
    endpoint_id: EndpointId,
    secret: Annotated[bool, typer.Option(help="Also print the signing secret.")] = False,
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """One endpoint in full (and its secret with --secret)."""
    client = _api(api, token)
    _show(client.request("GET", f"/v1/endpoints/{endpoint_id}"))
    if secret:
        typer.echo(client.request("GET", f"/v1/endpoints/{endpoint_id}/secret")["secret"])


@endpoints.command("edit")
def edit_endpoint(
    endpoint_id: EndpointId,
    url: Annotated[str | None, typer.Option(help="New URL.")] = None,
    event_type: EventTypes = None,
    region: Regions = None,
    city: Cities = None,
    all_cities: Annotated[
        bool, typer.Option("--no-filter", help="Deliver for every region and city again.")
    ] = False,
    description: Description = None,
    max_concurrency: Concurrency = None,
    rate: Rate = None,
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """Change what is named, nothing else."""
    changes = compact(
        {
            "url": url,
            "event_types": event_type,
            "regions": region,
            "cities": city,
            "description": description,
            "max_concurrency": max_concurrency,
            "rate_per_second": rate,
        }
    )
    if all_cities:
        if region or city:
            raise fail("--no-filter and --region/--city exclude each other", 2)
        changes.update(regions=[], cities=[])
    if not changes:
        raise fail("nothing to change: name a field (--url, --event-type, ...)", 2)
    _show(_api(api, token).request("PATCH", f"/v1/endpoints/{endpoint_id}", json=changes))


@endpoints.command("pause")
def pause(
    endpoint_id: EndpointId, api: WebhookApi = DEFAULT_WEBHOOK_API, token: Token = ""
) -> None:
    """Stop sending; what arrives meanwhile is dropped (replay it later)."""
    result = _api(api, token).request("POST", f"/v1/endpoints/{endpoint_id}/pause")
    typer.echo(f"{result['id']} is {result['state']}")


@endpoints.command("resume")
def resume(
    endpoint_id: EndpointId, api: WebhookApi = DEFAULT_WEBHOOK_API, token: Token = ""
) -> None:
    """Send again (also re-enables a disabled endpoint)."""
    result = _api(api, token).request("POST", f"/v1/endpoints/{endpoint_id}/resume")
    typer.echo(f"{result['id']} is {result['state']}")


@endpoints.command("delete")
def delete(
    endpoint_id: EndpointId,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """Delete an endpoint; what was still due for it is dropped."""
    client = _api(api, token)
    if not yes and not typer.confirm(f"delete {endpoint_id}?"):
        raise typer.Exit(1)
    client.request("DELETE", f"/v1/endpoints/{endpoint_id}")
    typer.echo(f"{endpoint_id} deleted")


@endpoints.command("rotate-secret")
def rotate_secret(
    endpoint_id: EndpointId,
    grace: Annotated[
        float | None,
        typer.Option(min=0, help="Seconds the old secret still signs (default: the service's)."),
    ] = None,
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """A new signing secret; the old one keeps signing during the grace period."""
    body = {"grace_seconds": grace} if grace is not None else {}
    result = _api(api, token).request(
        "POST", f"/v1/endpoints/{endpoint_id}/rotate-secret", json=body
    )
    expires = result.get("previous_secret_expires_at")
    typer.echo(f"new secret of {endpoint_id}; the old one signs until {output.utc(expires)}:")
    typer.echo(result["secret"])


Since = Annotated[datetime | None, typer.Option(help="From this moment (ISO 8601, offset).")]


@endpoints.command("attempts")
def attempts(
    endpoint_id: EndpointId,
    since: Since = None,
    event: Annotated[str | None, typer.Option(help="Only this event id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """The delivery log, newest first: time, status code, latency, answer or error."""
    if since is not None and since.tzinfo is None:
        raise fail("--since: give the offset, e.g. 2027-01-20T08:00:00+01:00", 2)
    params = compact(
        {"since": since.isoformat() if since else None, "event_id": event, "limit": limit}
    )
    rows = _api(api, token).request("GET", f"/v1/endpoints/{endpoint_id}/attempts", params=params)
    here = datetime.now().astimezone().tzinfo
    output.table(
        ("UTC", "local", "event", "attempt", "status", "code", "ms", "answer or error"),
        (
            (
                output.utc(a["at"]),
                output.local(a["at"], here),
                a["event_id"],
                a["attempt"],
                a["status"],
                a.get("status_code"),
                f"{a['latency_ms']:.0f}" if a.get("latency_ms") is not None else None,
                (a.get("error") or a.get("response_body") or "")[:80],
            )
            for a in output.track(rows, "formatting")
        ),
    )


@endpoints.command("replay")
def replay(
    endpoint_id: EndpointId,
    since: Annotated[datetime, typer.Option(help="Replay what failed or was dropped since.")],
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """Send again every event whose delivery failed or was dropped since a moment."""
    if since.tzinfo is None:
        raise fail("--since: give the offset, e.g. 2027-01-20T08:00:00+01:00", 2)
    client = _api(api, token)
    with output.working(f"queueing the replay for {endpoint_id}"):
        result = client.request(
            "POST",
            f"/v1/endpoints/{endpoint_id}/replay",
            json={"since": since.isoformat()},
            timeout=300,
        )
    typer.echo(f"{result['queued']} events queued for {endpoint_id}")


@endpoints.command("resend")
def resend(
    endpoint_id: EndpointId,
    event_id: Annotated[str, typer.Argument(help="The event (webhook-id) to send again.")],
    api: WebhookApi = DEFAULT_WEBHOOK_API,
    token: Token = "",
) -> None:
    """Send one event to this endpoint again."""
    _api(api, token).request("POST", f"/v1/endpoints/{endpoint_id}/messages/{event_id}/resend")
    typer.echo(f"{event_id} queued for {endpoint_id}")
