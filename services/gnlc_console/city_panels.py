"""What a city's page shows beside its form, each from its own service: its contacts'
choices and bouncing marks (the email service's ``/v1/cities/{id}/contacts``) and its
recent notices (the status service's ``/v1/status/cities/{id}``). A service that does not
answer leaves its panel saying so; the form works on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gnlc_console.backend import Backend, BackendError

#: Recent notices on the page, latest first (the status API's last 30 days).
RECENT = 20


@dataclass(frozen=True)
class Panel:
    """A panel's rows, or why it has none (``problem``: a sentence for the page)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


def _down(exc: BackendError) -> Panel:
    return Panel(problem=f"The {exc.service} {exc.message}; the city can still be edited.")


async def contacts_panel(email: Backend, city_id: str) -> Panel:
    """Each contact's choices and mark, as the email service has them."""
    try:
        answer = await email.call("GET", f"/v1/cities/{city_id}/contacts")
    except BackendError as exc:
        return _down(exc)
    if answer.status == 404:
        return Panel(
            problem=f"The email service does not know {city_id} yet: its copy of the "
            "directory has not caught up (reload in a moment)."
        )
    if not answer.ok:
        return Panel(problem=f"The email service refused: {answer.errors()[0]['msg']}")
    return Panel(rows=list(answer.body["contacts"]))


async def notices_panel(status: Backend, city_id: str) -> Panel:
    """The city's latest notices, every channel."""
    try:
        answer = await status.call("GET", f"/v1/status/cities/{city_id}", params={"limit": RECENT})
    except BackendError as exc:
        return _down(exc)
    if not answer.ok:
        return Panel(problem=f"The status service refused: {answer.errors()[0]['msg']}")
    return Panel(rows=list(answer.body["items"]))
