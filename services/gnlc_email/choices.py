"""What a contact chose on the preference page, and the decision it makes: does this
contact want this mail? Pure: the consumer asks, the store keeps, the page edits.

Only announcements (optional mail) are ever refused here; deadline reminders are required
mail for member cities and always go (bounces are decided elsewhere, ``bounces``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import get_args

from gnlc_core.events import AnnouncementPublished
from gnlc_core.notices import Step

#: The categories operators give announcements (``AnnouncementPublished.category``).
CATEGORIES: tuple[str, ...] = get_args(AnnouncementPublished.model_fields["category"].annotation)
#: Longest stored form of a set of categories (every category, comma separated).
MAX_STORED = len(",".join(CATEGORIES))


class Digest(StrEnum):
    """A contact's choice of a daily digest (the stored value and the form's)."""

    CITY = "city"  # as the city decides (the directory's ``digest``)
    ON = "on"
    OFF = "off"

    def wanted(self, city_digest: bool) -> bool:
        """Whether this contact's mail waits for the digest, its city deciding ``city_digest``."""
        return city_digest if self is Digest.CITY else self is Digest.ON


@dataclass(frozen=True)
class Choice:
    """A contact's choices; the default is what a contact who never opened the page gets:
    every category, the digest as its city decides."""

    categories_off: frozenset[str] = frozenset()
    digest: Digest = Digest.CITY

    def wants(self, category: str) -> bool:
        return category not in self.categories_off


DEFAULT = Choice()


def encode_categories(categories: frozenset[str]) -> str:
    """The stored form: the known categories among ``categories``, in the canonical order."""
    return ",".join(c for c in CATEGORIES if c in categories)


def decode_categories(stored: str) -> frozenset[str]:
    """Back from the stored form; a category no longer known is left out."""
    return frozenset(part for part in stored.split(",") if part in CATEGORIES)


UNSUBSCRIBED = "unsubscribed"  # the reason that is a state of its own (Status.UNSUBSCRIBED)


def unwanted(category: str | None, *, unsubscribed: bool, choice: Choice = DEFAULT) -> str | None:
    """Why a contact does not want a mail (the ledger's reason), or None if it does.
    ``category``: the announcement's category, None for required mail (a reminder)."""
    if category is None:
        return None
    if unsubscribed:
        return UNSUBSCRIBED
    if not choice.wants(category):
        return f"category off: {category}"
    return None


def not_sent(reason: str) -> Step:
    """The step of a notice not sent because the contact does not want it
    (``gnlc_core.notices``: unsubscribed, or dropped with the reason)."""
    return Step.UNSUBSCRIBED if reason == UNSUBSCRIBED else Step.DROPPED
