"""Commands that do not go through an API: Kafka topics, the AsyncAPI document, webhook
secrets, the local mailbox and email previews."""

from __future__ import annotations

import asyncio
import logging
import mailbox
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from pydantic import ValidationError

from gnlc_cli import output
from gnlc_cli.client import DEFAULT_API, Api, fail, resolve_token
from gnlc_cli.operator import ApiUrl, Token
from gnlc_core.directory import MAX_CITY_LANGUAGES, City, DirectoryError, load_csv
from gnlc_core.settings import Settings


def topics(
    timeout: Annotated[
        float, typer.Option(min=1, help="Give up after this many seconds without the broker.")
    ] = 15,
) -> None:
    """Create every Kafka topic the system uses (idempotent)."""
    from aiokafka.errors import KafkaError

    from gnlc_core.kafka import TopicsNotCreated, ensure_topics

    settings = Settings()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the one line below says it all
    try:
        created = asyncio.run(asyncio.wait_for(ensure_topics(settings), timeout))
    except TopicsNotCreated as exc:
        raise fail(str(exc)) from None
    except (TimeoutError, KafkaError, OSError) as exc:
        reason = f"no answer in {timeout:g} s" if isinstance(exc, TimeoutError) else str(exc)
        raise fail(
            f"cannot reach the Kafka broker at {settings.kafka_bootstrap_servers} ({reason}); "
            "start it (deploy/kafka.sh start) or set KAFKA_BOOTSTRAP_SERVERS"
        ) from None
    typer.echo("created: " + ", ".join(created) if created else "all topics exist")


def asyncapi() -> None:
    """Print the AsyncAPI document of the topics.

    The topic names carry GNLC_TOPIC_PREFIX; schemas/asyncapi.json is the document for the
    default prefix.
    """
    from gnlc_core.asyncapi import specification
    from gnlc_core.kafka import Topics

    typer.echo(specification(Topics(Settings().topic_prefix)), nl=False)


def secret() -> None:
    """Print a fresh whsec_ webhook signing secret."""
    from gnlc_webhook.partners import new_secret

    typer.echo(new_secret())


# -- the local mailbox --------------------------------------------------------------------

MAILDIR = Path(".local") / "mailbox"


def nearest(relative: Path) -> Path:
    """``relative`` in the working directory or the nearest parent holding it (else in the
    working directory, where the error will name it)."""
    here = Path.cwd()
    for directory in (here, *here.parents):
        if (directory / relative).is_dir():
            return directory / relative
    return here / relative


def _sent_at(message: EmailMessage) -> datetime:
    try:
        moment = parsedate_to_datetime(str(message["Date"]))
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_maildir(directory: Path) -> list[EmailMessage]:
    """Every message of a Maildir, oldest first; raises FileNotFoundError with a message
    saying what is missing."""
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no mailbox at {directory.resolve()}: run this from the project's root, where "
            "deploy/run-local.sh keeps .local/mailbox, or pass --dir"
        )
    if not (directory / "new").is_dir() or not (directory / "cur").is_dir():
        raise FileNotFoundError(f"{directory.resolve()} is not a Maildir (no new/ and cur/)")
    box = mailbox.Maildir(directory, create=False)
    messages = []
    for key in box.iterkeys():
        parsed = message_from_bytes(box.get_bytes(key), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        messages.append(parsed)
    return sorted(messages, key=_sent_at)


def show_mailbox(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Maildir (default: .local/mailbox).")
    ] = None,
    show: Annotated[int, typer.Option(min=0, help="Print message N (1 = oldest) in full.")] = 0,
) -> None:
    """List what the local mailbox received, or print one message (--show N).

    The mailbox is the run command's: .local/mailbox in this directory or the nearest parent
    that has one (--dir to read another).
    """
    directory = directory or nearest(MAILDIR)
    try:
        messages = read_maildir(directory)
    except OSError as exc:
        raise fail(str(exc)) from None
    if show:
        if show > len(messages):
            raise fail(f"no message {show}: the mailbox holds {len(messages)}")
        message = messages[show - 1]
        for header in ("Date", "From", "To", "Subject"):
            typer.echo(f"{header}: {message[header]}")
        body = message.get_body(preferencelist=("plain",))
        typer.echo("")
        typer.echo(body.get_content() if isinstance(body, EmailMessage) else "")
        return
    here = datetime.now().astimezone().tzinfo
    output.table(
        ("#", "sent (UTC)", "sent (local)", "to", "subject"),
        (
            (n, output.utc(_sent_at(m)), output.local(_sent_at(m), here), m["To"], m["Subject"])
            for n, m in enumerate(messages, start=1)
        ),
    )
    if not messages:
        typer.echo(f"(the mailbox at {directory} is empty)")


# -- previews -----------------------------------------------------------------------------


def city_for_preview(city_id: str, api: str, token: str, settings: Settings) -> City:
    """The city as the scheduler holds it when its API answers; else the directory file
    (with a note on stderr). Raises LookupError naming where it looked."""
    resolved = resolve_token(token)
    problem = "no operator token"
    if resolved is not None:
        try:
            with Api(api, resolved).client(timeout=3) as client:
                response = client.get(f"/v1/cities/{city_id}")
        except httpx.HTTPError as exc:
            problem = f"no answer: {type(exc).__name__}"
        else:
            if response.status_code == 200:
                try:
                    return City.model_validate(response.json())
                except (ValueError, ValidationError):
                    problem = "its answer is not a city"
            elif response.status_code == 404:
                raise LookupError(f"no city {city_id!r} in the scheduler's directory ({api})")
            else:
                problem = f"it answered {response.status_code}"
    path = settings.directory_path
    typer.echo(f"note: directory from {path}, not the scheduler at {api} ({problem})", err=True)
    try:
        directory = load_csv(path)
    except (OSError, DirectoryError) as exc:
        raise LookupError(f"cannot read {path}: {exc}") from None
    if city_id not in directory.by_id:
        raise LookupError(f"no city {city_id!r} in {path}")
    return directory.by_id[city_id]


def check_language(language: str) -> str:
    """A language tag whose language has a catalog (``fr``, ``fr-CA``), else ValueError
    naming those that have one."""
    from gnlc_email.i18n import SOURCE_LANGUAGE, Catalogs

    tags = Catalogs().tags
    chosen = Catalogs().choose(language)
    base = language.replace("_", "-").split("-")[0].lower()
    if chosen == SOURCE_LANGUAGE and base != SOURCE_LANGUAGE:
        known = ", ".join(sorted(tag.replace("_", "-") for tag in tags))
        raise ValueError(f"no catalog for {language!r}; languages with catalogs: {known}")
    return language


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
    api: ApiUrl = DEFAULT_API,
    token: Token = "",
) -> None:
    """Render an email to .eml, .html and .txt files, as a city would receive it.

    The city comes from the scheduler's directory when its API answers, else from the
    directory file (GNLC_DIRECTORY_PATH), with a note.
    """
    from gnlc_core.consumer import describe
    from gnlc_core.events import parse_any_event
    from gnlc_email.preview import kind_of, preview_files, sample_event, write_preview
    from gnlc_email.render import Kind

    settings = Settings()
    kinds = {kind.value: kind for kind in Kind}
    if template not in kinds:
        raise fail(f"template: unknown {template!r}; one of {', '.join(kinds)}", 2)
    kind = kinds[template]
    if language:
        try:
            check_language(language)
        except ValueError as exc:
            raise fail(f"language: {exc}", 2) from None
    try:
        target = city_for_preview(city, api, token, settings)
    except LookupError as exc:
        raise fail(f"city: {exc}", 2) from None
    if language:
        try:
            # the language asked for first, then the city's own chain
            others = [tag for tag in target.languages if tag.lower() != language.lower()]
            chain = (language, *others)[:MAX_CITY_LANGUAGES]
            target = target.model_validate(
                {**target.model_dump(), "language": language, "languages": chain}
            )
        except ValidationError as exc:
            raise fail(f"language: {describe(exc)}", 2) from None
    if event is None:
        chosen = sample_event(kind, datetime.now(UTC))
    else:
        try:
            chosen = parse_any_event(event.read_bytes())
        except (OSError, ValidationError) as exc:
            problem = describe(exc) if isinstance(exc, ValidationError) else str(exc)
            raise fail(f"event: {problem}", 2) from None
        if kind_of(chosen) is not kind:
            raise fail(f"event: this event renders with the {kind_of(chosen).value} template", 2)
    stem = f"{kind.value}-{target.id}-{target.language}"
    for path in write_preview(preview_files(chosen, target, settings), out, stem):
        typer.echo(str(path))
