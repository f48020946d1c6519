"""``gnlc-notify``: the operator's command line.

Commands that change or list deadlines, announcements and cities call the scheduler's API
(``GNLC_API_URL``); partners and endpoints call the webhook service's API
(``GNLC_WEBHOOK_API_URL``); notices' states call the status service's API
(``GNLC_STATUS_API_URL``); all with the operator token (``GNLC_OPERATOR_TOKEN``, ``--token``,
or ``.local/operator-token`` written by the run command).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gnlc_cli import bounces, dead_letters, operator, status, tools, webhooks

app = typer.Typer(
    help="GNLC Notify: deadlines, announcements and their notifications.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dev = typer.Typer(help="Run the whole system locally.", no_args_is_help=True)
app.add_typer(dev, name="dev")
console = typer.Typer(help="The operator console's accounts.", no_args_is_help=True)
app.add_typer(console, name="console")
app.add_typer(operator.cities, name="cities")
app.add_typer(operator.deadlines, name="deadlines")
app.add_typer(operator.announcements, name="announcements")
app.add_typer(webhooks.partners, name="partners")
app.add_typer(webhooks.endpoints, name="endpoints")
app.add_typer(bounces.bounces, name="bounces")
app.add_typer(status.status, name="status")
app.add_typer(dead_letters.dead_letters, name="dead-letters")
app.command("schedule")(operator.schedule)
app.command("topics")(tools.topics)
app.command("asyncapi")(tools.asyncapi)
app.command("secret")(tools.secret)
app.command("mailbox")(tools.show_mailbox)
app.command("preview")(tools.preview)


@dev.command("up")
def dev_up(
    exit_after_mail: Annotated[
        int, typer.Option(help="Stop once this many mails and a webhook landed (0: run on).")
    ] = 0,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds (0: never).")] = 0,
) -> None:
    """Mailbox, webhook receiver, scheduler and consumers, with a demo deadline.

    Ports: GNLC_SCHEDULER_PORT, GNLC_EMAIL_PORT, GNLC_WEBHOOK_PORT, GNLC_STATUS_PORT,
    GNLC_MAILBOX_PORT, GNLC_RECEIVER_PORT. Ctrl-C or SIGTERM stops everything it started.
    """
    from gnlc_devtools.local import up

    raise typer.Exit(up(Path(os.getcwd()), exit_after_mail=exit_after_mail, timeout=timeout))


@console.command("add-user")
def console_add_user(
    name: str,
    role: Annotated[str, typer.Option(help="viewer (reads) or editor (also changes)")] = "viewer",
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input (else asked twice).")
    ] = False,
) -> None:
    """Create a console account, or set a new password and role for an existing one."""
    from gnlc_console.accounts import Role
    from gnlc_console.cli import add_user_command

    if role not in {r.value for r in Role}:
        raise typer.BadParameter("viewer or editor", param_hint="--role")
    raise typer.Exit(add_user_command(name, Role(role), password_stdin))


@console.command("remove-user")
def console_remove_user(name: str) -> None:
    """Delete a console account and its sessions."""
    from gnlc_console.cli import remove_user_command

    raise typer.Exit(remove_user_command(name))


if __name__ == "__main__":
    app()
