"""The bounce loop's parts of the email service, built from the settings in one place so the
app wires them in a few lines: VERP return paths and DKIM for the consumer, the inbound SMTP
listener, the SendGrid webhook, the operator API, and the feedback handler behind them.

Settings are checked when the app is made, so a bad configuration stops the service at
start with a message naming the variable: VERP (``GNLC_BOUNCE_DOMAIN``) needs
``GNLC_BOUNCE_SECRETS`` (there is no default secret; the local run makes one), and so do the
listener and the webhook, which verify tokens.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.directory import DirectorySource
from gnlc_core.ledger import Ledger
from gnlc_core.limits import DEFAULT_BODY_LIMIT
from gnlc_core.logs import get_logger
from gnlc_core.settings import Settings
from gnlc_email.bounce_api import BounceApiState, bounce_api_router
from gnlc_email.bounce_store import BounceStore
from gnlc_email.dkim_signer import DkimSigner
from gnlc_email.feedback import FeedbackHandler, Thresholds
from gnlc_email.inbound import InboundHandler, start_listener
from gnlc_email.sendgrid import (
    MAX_BODY_BYTES,
    PATH,
    SendGridState,
    load_public_key,
    sendgrid_router,
)
from gnlc_email.store import Preferences
from gnlc_email.verp import ReturnPaths

log = get_logger(__name__)


def return_paths(settings: Settings) -> ReturnPaths | None:
    needs = [
        name
        for name, on in (
            ("GNLC_BOUNCE_SMTP_PORT", settings.bounce_smtp_port is not None),
            ("GNLC_BOUNCE_SENDGRID_PUBLIC_KEY", settings.bounce_sendgrid_public_key is not None),
        )
        if on
    ]
    if not settings.bounce_domain:
        if needs:
            raise ValueError(f"{needs[0]} needs GNLC_BOUNCE_DOMAIN (the VERP return paths)")
        return None
    secrets = [s.get_secret_value() for s in settings.bounce_secrets]
    if not secrets or not all(secrets):
        raise ValueError(
            "GNLC_BOUNCE_DOMAIN needs GNLC_BOUNCE_SECRETS (a JSON list of HMAC secrets, "
            "current last): return paths are signed, and there is no default secret"
        )
    return ReturnPaths(secrets, settings.bounce_domain, settings.bounce_local_part)


class BounceService:
    def __init__(self, settings: Settings, directory: DirectorySource) -> None:
        self._settings = settings
        self._directory = directory
        self.return_paths = return_paths(settings)
        self.dkim = DkimSigner.from_settings(settings)
        key = settings.bounce_sendgrid_public_key
        self._sendgrid_key = load_public_key(key) if key else None
        self._sendgrid = SendGridState()
        self._api = BounceApiState()
        self._listener: asyncio.Server | None = None
        self.store: BounceStore | None = None

    def consumer_options(self) -> dict[str, Any]:
        return {
            "return_paths": self.return_paths,
            "dkim": self.dkim,
            "sendgrid_args": self._sendgrid_key is not None,
        }

    def routers(self) -> list[APIRouter]:
        routers = [bounce_api_router(self._api, self._settings, self._directory)]
        if self._sendgrid_key is not None:
            routers.append(
                sendgrid_router(
                    self._sendgrid,
                    self._sendgrid_key,
                    self._settings.bounce_sendgrid_max_age_seconds,
                )
            )
        return routers

    @staticmethod
    def body_limit(path: str) -> int:
        return MAX_BODY_BYTES if path == PATH else DEFAULT_BODY_LIMIT

    async def start(self, engine: AsyncEngine, ledger: Ledger, preferences: Preferences) -> None:
        """Once the database is migrated: the store, the handler, the listener."""
        self.store = BounceStore(engine)
        self._api.store = self.store
        if self.return_paths is None:
            return
        s = self._settings
        handler = FeedbackHandler(
            self.return_paths,
            self.store,
            ledger,
            preferences,
            self._directory,
            Thresholds(s.bounce_soft_threshold, s.bounce_soft_window_seconds),
        )
        self._sendgrid.handler = handler
        if s.bounce_smtp_port is not None:
            self._listener = await start_listener(
                InboundHandler(handler),
                s.bounce_smtp_host,
                s.bounce_smtp_port,
                self.return_paths.domain,
            )
            log.info("bounce listener started", host=s.bounce_smtp_host, port=s.bounce_smtp_port)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            with suppress(TimeoutError):  # a client still connected is not waited for long
                async with asyncio.timeout(5):
                    await self._listener.wait_closed()
