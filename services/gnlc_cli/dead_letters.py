"""What the channels parked on their dead-letter topics, from the status service's API
(``GNLC_STATUS_API_URL``), and redriving it:

    gnlc-notify dead-letters list [--channel email] [--reason "invalid event"] [--parked]
    gnlc-notify dead-letters show 12
    gnlc-notify dead-letters redrive 12 [--force]
    gnlc-notify dead-letters redrive --all --channel webhook [--reason ...]
"""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer

from gnlc_cli import output
from gnlc_cli.client import DEFAULT_STATUS_API, Api, compact, fail
from gnlc_cli.operator import Token
from gnlc_cli.status import StatusApi

Channel = Annotated[
    str | None, typer.Option(help="scheduler, email or webhook.", show_default=False)
]
Reason = Annotated[str | None, typer.Option(help="A part of the reason (any case).")]
SourceTopic = Annotated[str | None, typer.Option("--source-topic", help="The source topic.")]

dead_letters = typer.Typer(
    help="Records the channels could not handle: list, show, redrive.", no_args_is_help=True
)


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:100]
    except (KeyError, OSError):
        return "cli"


def _state(row: dict[str, Any]) -> str:
    if row.get("redriven_at"):
        return f"redriven {output.local(row['redriven_at'])} by {row.get('redriven_by') or '?'}"
    return "parked"


@dead_letters.command("list")
def list_dead_letters(
    channel: Channel = None,
    reason: Reason = None,
    source_topic: SourceTopic = None,
    parked: Annotated[bool, typer.Option("--parked", help="Only those not redriven.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    status_api: StatusApi = DEFAULT_STATUS_API,
    token: Token = "",
) -> None:
    """Dead letters, latest first, with their reasons (times in this machine's zone)."""
    client = Api.connect(status_api, token, name="status")
    params = compact(
        {
            "channel": channel,
            "reason": reason,
            "source_topic": source_topic,
            "state": "parked" if parked else None,
            "limit": limit,
        }
    )
    with output.working("reading the dead letters"):
        page = client.request("GET", "/v1/dead-letters", params=params, missing="no dead letters")
    output.table(
        ("id", "channel", "parked", "source topic", "event", "recipient", "reason", "state"),
        (
            (
                row["id"],
                row["channel"],
                output.local(row["parked_at"]),
                row.get("source_topic") or "",
                row.get("event_id") or "",
                row.get("recipient") or "",
                row["reason"][:80],
                _state(row),
            )
            for row in page["items"]
        ),
    )
    output.line(f"{len(page['items'])} shown of {page['total']}")


@dead_letters.command("show")
def show(
    dead_letter_id: Annotated[int, typer.Argument(min=1, help="The dead letter's id.")],
    status_api: StatusApi = DEFAULT_STATUS_API,
    token: Token = "",
) -> None:
    """One dead letter: where it was parked, why, its key and body."""
    client = Api.connect(status_api, token, name="status")
    row = client.request("GET", f"/v1/dead-letters/{dead_letter_id}")
    output.table(
        ("field", "value"),
        (
            ("id", row["id"]),
            ("record", f"{row['topic']} partition {row['partition']} offset {row['offset']}"),
            ("parked", output.local(row["parked_at"])),
            ("source topic", row.get("source_topic")),
            ("reason", row["reason"]),
            ("recipient", row.get("recipient")),
            ("event", f"{row.get('event_type') or '?'} {row.get('event_id') or ''}".strip()),
            ("key", row.get("key")),
            ("size", f"{row['size']} bytes"),
            ("state", _state(row)),
            ("redrive", row.get("redrive_note")),
        ),
    )
    output.line(row["body"] + ("\n[... cut]" if row["body_truncated"] else ""))


@dead_letters.command("redrive")
def redrive(
    dead_letter_id: Annotated[
        int | None, typer.Argument(min=1, help="The dead letter's id (or --all).")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every dead letter the filters select (at most 1000).")
    ] = False,
    channel: Channel = None,
    reason: Reason = None,
    source_topic: SourceTopic = None,
    force: Annotated[bool, typer.Option(help="Send again records already redriven.")] = False,
    status_api: StatusApi = DEFAULT_STATUS_API,
    token: Token = "",
) -> None:
    """Send a dead letter again: back to its source topic, or (a webhook delivery parked
    for one endpoint) to that endpoint alone. A record that fails again comes back as a
    new dead letter."""
    if (dead_letter_id is None) == (not every):
        raise fail("give a dead letter's id, or --all with filters", 2)
    client = Api.connect(status_api, token, name="status")
    if dead_letter_id is not None:
        row = client.request(
            "POST",
            f"/v1/dead-letters/{dead_letter_id}/redrive",
            json={"by": _who(), "force": force},
        )
        output.line(f"dead letter {row['id']} redriven: {row.get('redrive_note')}")
        return
    body = compact(
        {
            "by": _who(),
            "force": force,
            "channel": channel,
            "reason": reason,
            "source_topic": source_topic,
        }
    )
    with output.working("redriving"):
        done = client.request("POST", "/v1/dead-letters/redrive", json=body, timeout=120)
    output.line(
        f"{len(done['redriven'])} redriven of {done['matched']} selected; "
        f"{done['skipped_count']} not"
    )
    if done["skipped"]:
        output.table(("id", "why not"), ((s["id"], s["why"]) for s in done["skipped"]))
