"""Bouncing contacts and alerts, against the email service's API (``GNLC_EMAIL_API_URL``):

gnlc-notify bounces list                      # contacts that get no mail, and why
gnlc-notify bounces clear kathmandu lll@kathmandu.example.org
gnlc-notify bounces alerts                    # cities with no deliverable contact, complaints
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from gnlc_cli import output
from gnlc_cli.client import Api
from gnlc_cli.operator import Token

DEFAULT_EMAIL_API = "http://127.0.0.1:8101"
EmailApi = Annotated[
    str, typer.Option("--api", envvar="GNLC_EMAIL_API_URL", help="Email service API base URL.")
]

bounces = typer.Typer(
    help="Contacts marked bouncing, clearing them, and delivery alerts.", no_args_is_help=True
)


def _api(base: str, token: str) -> Api:
    return Api.connect(base, token, name="email")


@bounces.command("list")
def list_bouncing(api: EmailApi = DEFAULT_EMAIL_API, token: Token = "") -> None:
    """Contacts marked bouncing: they get no mail until cleared."""
    rows = _api(api, token).request("GET", "/v1/bouncing", missing="no bounce handling")
    output.table(
        ("city", "address", "since (UTC)", "in directory", "reason"),
        (
            (
                b["city_id"],
                b["address"],
                output.utc(b["since"]),
                "yes" if b["in_directory"] else "no (address changed)",
                b["reason"],
            )
            for b in rows
        ),
    )


@bounces.command("clear")
def clear(
    city_id: Annotated[str, typer.Argument(help="The city's id.")],
    address: Annotated[str, typer.Argument(help="The contact's address.")],
    api: EmailApi = DEFAULT_EMAIL_API,
    token: Token = "",
) -> None:
    """Clear a contact's bouncing mark: its next notices are sent again."""
    path = f"/v1/bouncing/{quote(city_id, safe='')}/{quote(address, safe='@')}"
    _api(api, token).request("DELETE", path, missing="no bounce handling")
    typer.echo(f"{address} of {city_id} gets mail again")


@bounces.command("alerts")
def alerts(api: EmailApi = DEFAULT_EMAIL_API, token: Token = "") -> None:
    """Cities with no deliverable contact left; complaints about required mail."""
    rows = _api(api, token).request("GET", "/v1/alerts", missing="no bounce handling")
    output.table(
        ("when (UTC)", "alert", "city", "address", "detail"),
        (
            (output.utc(a["created_at"]), a["kind"], a["city_id"], a["address"] or "", a["detail"])
            for a in rows
        ),
    )
