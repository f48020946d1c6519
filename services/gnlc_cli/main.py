"""``gnlc-notify``: the operator's command line."""

from __future__ import annotations

import asyncio
import mailbox
import os
from datetime import UTC, datetime
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


@app.command("preview")
def preview(
    template: Annotated[
        str, typer.Argument(help="deadline-reminder, overdue-reminder or announcement.")
    ],
    city: Annotated[str, typer.Option(help="City id from the directory.")] = "kathmandu",
    language: Annotated[
        str | None, typer.Option(help="Language to render in (default: the city's).")
    ] = None,
    event: Annotated[
        Path | None, typer.Option(help="A CloudEvent JSON file to render (default: a sample).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where to write the files.")] = Path("preview"),
) -> None:
    """Render an email to .eml, .html and .txt files, as a city would receive it."""
    from pydantic import ValidationError

    from gnlc_core.consumer import describe
    from gnlc_core.directory import load_csv
    from gnlc_core.events import parse_event
    from gnlc_email.preview import kind_of, preview_files, sample_event, write_preview
    from gnlc_email.render import Kind

    settings = Settings()
    kinds = {kind.value: kind for kind in Kind}
    if template not in kinds:
        typer.echo(f"error: template: unknown {template!r}; one of {', '.join(kinds)}", err=True)
        raise typer.Exit(2)
    kind = kinds[template]
    directory = load_csv(settings.directory_path)
    if city not in directory.by_id:
        typer.echo(f"error: city: no city {city!r} in {settings.directory_path}", err=True)
        raise typer.Exit(2)
    target = directory.by_id[city]
    if language:
        try:
            target = target.model_validate({**target.model_dump(), "language": language})
        except ValidationError as exc:
            typer.echo(f"error: language: {describe(exc)}", err=True)
            raise typer.Exit(2) from None
    if event is None:
        chosen = sample_event(kind, datetime.now(UTC))
    else:
        try:
            chosen = parse_event(event.read_bytes())
        except (OSError, ValidationError) as exc:
            problem = describe(exc) if isinstance(exc, ValidationError) else str(exc)
            typer.echo(f"error: event: {problem}", err=True)
            raise typer.Exit(2) from None
        if kind_of(chosen) is not kind:
            typer.echo(
                f"error: event: this event renders with the {kind_of(chosen).value} template",
                err=True,
            )
            raise typer.Exit(2)
    stem = f"{kind.value}-{target.id}-{target.language}"
    for path in write_preview(preview_files(chosen, target, settings), out, stem):
        typer.echo(str(path))


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
