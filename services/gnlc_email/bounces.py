"""What a bounce or a complaint does: pure decisions, tested as tables
(``tests/unit/test_bounces.py``); ``gnlc_email.feedback`` carries them out.

- A hard bounce marks the contact ``bouncing`` at once and the notice ``bounced``.
- Soft bounces do the same once ``threshold`` of them came within the window (the one
  at hand included); below it they are only counted.
- A complaint (an ARF report, a provider's spam report) about optional mail unsubscribes
  the contact from announcements; about required mail (a reminder) it never does: it
  raises an alert for an operator instead.
- A contact that is bouncing gets nothing more until an operator clears it or the city's
  address changes (the mark is per city and address).
- A city whose every contact is bouncing is an alert.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum

from gnlc_email.verp import MailKind

CONTACT_BOUNCING = "contact bouncing"


class Feedback(StrEnum):
    """What came back about a notice."""

    HARD = "hard"  # a permanent failure (RFC 3464 Action: failed; a provider's hard bounce)
    SOFT = "soft"  # a temporary one (Action: delayed; a deferral, a block)
    COMPLAINT = "complaint"  # the recipient marked it as spam (RFC 5965 ARF)


class Action(StrEnum):
    MARK_BOUNCING = "mark-bouncing"  # contact bouncing, notice bounced
    COUNT = "count"  # a soft bounce below the threshold: recorded, nothing else changes
    UNSUBSCRIBE = "unsubscribe"  # from announcements only
    ALERT = "alert"  # a complaint about required mail: an operator looks at it


class AlertKind(StrEnum):
    NO_DELIVERABLE_CONTACT = "no-deliverable-contact"
    COMPLAINT_ABOUT_REQUIRED = "complaint-about-required-mail"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(
    feedback: Feedback, kind: MailKind, *, soft_in_window: int, threshold: int, window: float
) -> Decision:
    """What one piece of feedback about a notice does. ``soft_in_window`` counts the soft
    bounces of the contact within the last ``window`` seconds, this one included."""
    if feedback is Feedback.HARD:
        return Decision(Action.MARK_BOUNCING, "hard bounce")
    if feedback is Feedback.SOFT:
        if soft_in_window >= threshold:
            return Decision(
                Action.MARK_BOUNCING,
                f"{soft_in_window} soft bounces within {_duration(window)}",
            )
        return Decision(
            Action.COUNT, f"soft bounce {soft_in_window} of {threshold} within {_duration(window)}"
        )
    if kind is MailKind.OPTIONAL:
        return Decision(Action.UNSUBSCRIBE, "complaint: unsubscribed from announcements")
    return Decision(Action.ALERT, "complaint about required mail: not unsubscribed")


def drop_reason(bouncing: bool) -> str | None:
    """Why a notice to a contact is not sent (None: send it)."""
    return CONTACT_BOUNCING if bouncing else None


def undeliverable(contacts: Iterable[str], bouncing: Collection[str]) -> bool:
    """Every contact of a city is bouncing (addresses in lower case in ``bouncing``)."""
    addresses = [address.lower() for address in contacts]
    return bool(addresses) and all(address in bouncing for address in addresses)


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{seconds:g} s"
