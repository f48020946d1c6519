"""Carrying out what a bounce or complaint decides (``gnlc_email.bounces.decide``), whichever
way it came in (the inbound SMTP listener, a provider's webhook).

A token that does not verify changes nothing: it is logged (without the token's parts or
any secret) and dropped. The notice's new state goes through the email ``Ledger``, so its
listeners (receipts, metrics) see ``bounced`` like every other state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from gnlc_core.directory import DirectorySource
from gnlc_core.ledger import Ledger, Notice, Status
from gnlc_core.logs import get_logger
from gnlc_email.bounce_store import BounceStore, Found
from gnlc_email.bounces import Action, AlertKind, Feedback, decide, undeliverable
from gnlc_email.store import Preferences
from gnlc_email.verp import BadBounceToken, ReturnPaths

log = get_logger(__name__)


class Source(StrEnum):
    SMTP = "smtp"
    SENDGRID = "sendgrid"


class Outcome(StrEnum):
    REFUSED = "refused"  # the token does not verify: nothing changed
    UNKNOWN = "unknown"  # a valid token, but no such notice in the ledger
    APPLIED = "applied"  # the decision's action was carried out


@dataclass(frozen=True)
class Thresholds:
    soft_bounces: int
    window_seconds: float


class FeedbackHandler:
    def __init__(
        self,
        return_paths: ReturnPaths,
        store: BounceStore,
        ledger: Ledger,
        preferences: Preferences,
        directory: DirectorySource,
        thresholds: Thresholds,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._paths = return_paths
        self._store = store
        self._ledger = ledger
        self._preferences = preferences
        self._directory = directory
        self._thresholds = thresholds
        self._clock = clock

    @property
    def return_paths(self) -> ReturnPaths:
        return self._paths

    async def handle(
        self,
        token: str,
        kind: Feedback,
        source: Source,
        detail: str,
        addresses: frozenset[str] = frozenset(),
    ) -> Outcome:
        """One piece of feedback about the notice ``token`` names."""
        try:
            ref = self._paths.verify(token)
        except BadBounceToken as exc:
            log.warning("feedback refused", source=source.value, feedback=kind.value, why=str(exc))
            return Outcome.REFUSED
        found = await self._store.notice(ref.event_id, ref.recipient_digest)
        if found is None:
            log.warning("feedback: no such notice", source=source.value, event_id=ref.event_id)
            return Outcome.UNKNOWN
        if addresses and found.address.lower() not in addresses:
            log.info(  # a forwarded address failing: the token says whose notice it was
                "feedback names another address", event_id=found.event_id, city=found.city_id
            )
        now = self._clock()
        await self._store.record(found, kind, source.value, detail, now=now)
        soft = 0
        if kind is Feedback.SOFT:
            soft = await self._store.soft_count(
                found.city_id, found.address, self._thresholds.window_seconds, now
            )
        decision = decide(
            kind,
            ref.kind,
            soft_in_window=soft,
            threshold=self._thresholds.soft_bounces,
            window=self._thresholds.window_seconds,
        )
        log.info(
            "feedback",
            source=source.value,
            feedback=kind.value,
            action=decision.action.value,
            event_id=found.event_id,
            recipient=found.recipient,
            detail=detail,
        )
        if decision.action is Action.MARK_BOUNCING:
            await self._bouncing(found, f"{decision.reason}: {detail}")
        elif decision.action is Action.UNSUBSCRIBE:
            await self._preferences.unsubscribe(found.address, found.city_id)
        elif decision.action is Action.ALERT:
            await self._alert(
                AlertKind.COMPLAINT_ABOUT_REQUIRED,
                found.city_id,
                f"{decision.reason} ({detail})",
                address=found.address,
                event_id=found.event_id,
            )
        return Outcome.APPLIED

    async def _bouncing(self, found: Found, reason: str) -> None:
        newly = await self._store.mark(found.city_id, found.address, reason, found.event_id)
        await self._ledger.record_many(
            [Notice(found.event_id, found.recipient, Status.BOUNCED, found.attempts, reason)]
        )
        city = self._directory.directory.by_id.get(found.city_id)
        if not newly or city is None:
            return
        marked = await self._store.bouncing_among((city.id, a) for a in city.contacts)
        if undeliverable(city.contacts, {address for _, address in marked}):
            await self._alert(
                AlertKind.NO_DELIVERABLE_CONTACT,
                city.id,
                f"every contact of {city.name} is bouncing ({len(city.contacts)})",
            )

    async def _alert(
        self,
        kind: AlertKind,
        city_id: str,
        detail: str,
        *,
        address: str | None = None,
        event_id: str | None = None,
    ) -> None:
        await self._store.alert(kind, city_id, detail, address=address, event_id=event_id)
        log.error("alert", alert=kind.value, city=city_id, event_id=event_id, detail=detail)
