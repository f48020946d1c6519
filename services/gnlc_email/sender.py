"""SMTP sending over a small pool of persistent aiosmtplib connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage

import aiosmtplib

from gnlc_core.settings import Settings


class SmtpPool:
    """Up to ``size`` open connections, reused; a connection that failed is dropped."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(settings.smtp_connections)

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls if s.smtp_starttls else False,
            timeout=s.smtp_timeout_seconds,
        )

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        async with self._slots:
            client = self._idle.get_nowait() if not self._idle.empty() else self._client()
            try:
                if not client.is_connected:
                    await client.connect()
                yield client
            except BaseException:
                client.close()
                raise
            self._idle.put_nowait(client)

    async def send(self, message: EmailMessage) -> None:
        """Send one message; raises ``aiosmtplib.SMTPException`` or ``OSError``.

        A pooled connection the server has since closed is replaced once, transparently.
        """
        try:
            async with self._connection() as client:
                await client.send_message(message)
        except aiosmtplib.SMTPServerDisconnected:
            async with self._connection() as client:
                await client.send_message(message)

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
