"""``gnlc-notify``: the operator's command line."""

from __future__ import annotations

import asyncio
import mailbox
import os
from email import message_from_bytes, policy
from pathlib import Path
from typing import Annotated

import typer

from gnlc_cli import operator
from gnlc_core.kafka import ensure_topics
from gnlc_core.settings import Settings

app = typer.Typer(help="GNLC Notify: deadlines, announcements and their notifications.")
dev = typer.Typer(help="Run the whole system locally.")
app.add_typer(dev, name="dev")
app.add_typer(operator.cities, name="cities")
app.add_typer(operator.deadlines, name="deadlines")
app.add_typer(operator.announcements, name="announcements")
app.command("schedule")(operator.schedule)


@app.command("topics")
def topics() -> None:
    """Create every Kafka topic the system uses (idempotent)."""
    created = asyncio.run(ensure_topics(Settings()))
    typer.echo("created: " + ", ".join(created) if created else "all topics exist")


@app.command("asyncapi")
def asyncapi() -> None:
    """Print the AsyncAPI document of the topics (schemas/asyncapi.json)."""
    from gnlc_core.asyncapi import specification
    from gnlc_core.kafka import Topics

    typer.echo(specification(Topics("gnlc.")), nl=False)


@app.command("secret")
def secret() -> None:
    """Print a fresh ``whsec_`` webhook signing secret."""
    from gnlc_webhook.partners import new_secret

    typer.echo(new_secret())


@app.command("mailbox")
def show_mailbox(
    directory: Annotated[Path, typer.Option("--dir", help="Maildir.")] = Path(".local/mailbox"),
    show: Annotated[int, typer.Option(help="Print message N (1 = oldest) in full.")] = 0,
) -> None:
    """List what the local mailbox received."""
    box = mailbox.Maildir(directory, create=False)
    messages = sorted(
        (message_from_bytes(box.get_bytes(k), policy=policy.default) for k in box.iterkeys()),
        key=lambda m: str(m["Date"]),
    )
    for number, message in enumerate(messages, start=1):
        if show and number != show:
            continue
        typer.echo(f"{number:4}  {message['Date']}  {message['To']}  {message['Subject']}")
        if show:
            body = message.get_body(preferencelist=("plain",))
            typer.echo(body.get_content() if body else "")


@dev.command("up")
def dev_up(
    exit_after_mail: Annotated[
        int, typer.Option(help="Stop once this many mails and a webhook landed (0: run on).")
    ] = 0,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds (0: never).")] = 0,
) -> None:
    """Mailbox, webhook receiver, scheduler and consumers, with a demo deadline."""
    from gnlc_devtools.local import up

    raise typer.Exit(up(Path(os.getcwd()), exit_after_mail=exit_after_mail, timeout=timeout))


if __name__ == "__main__":
    app()
