"""SMTP sending over a pool of persistent aiosmtplib connections, and what a failure means.

The pool holds up to ``GNLC_SMTP_CONNECTIONS`` open connections (that is the send
concurrency: one transaction per connection at a time), reuses them, drops one that broke
and replaces a connection the server closed while idle, once, transparently. Every send
first passes the global rate limit.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import aiosmtplib

from gnlc_core import tracing
from gnlc_core.settings import Settings
from gnlc_email.ratelimit import RateLimiter


@dataclass(frozen=True)
class Failure:
    """Why a send failed, and whether trying again later can help."""

    transient: bool
    reason: str
    code: int | None = None


def classify(exc: BaseException) -> Failure:
    """4xx replies, lost or refused connections and timeouts are transient; a 5xx about
    this recipient or this message is permanent. Failures that are about us rather than the
    recipient (authentication, our sender address, the greeting) are treated as transient:
    retrying is right once the configuration is fixed, and the dead-letter topic shows them
    if it is not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return Failure(first.code < 500, f"smtp {first.code}: {first.message}", first.code)
    if isinstance(
        exc,
        aiosmtplib.SMTPAuthenticationError
        | aiosmtplib.SMTPSenderRefused
        | aiosmtplib.SMTPHeloError,
    ):
        return Failure(True, f"smtp {exc.code} ({type(exc).__name__}): {exc.message}", exc.code)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return Failure(exc.code < 500, f"smtp {exc.code}: {exc.message}", exc.code)
    if isinstance(exc, OSError):  # before ValueError: a TLS verification error is both
        return Failure(True, f"smtp: {type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError):  # an address aiosmtplib refuses to put on the wire
        return Failure(False, f"invalid address: {exc}")
    return Failure(True, f"smtp: {type(exc).__name__}: {exc}")


#: What ``SmtpPool.send`` raises; ``classify`` tells what each means.
SEND_ERRORS = (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, ValueError)


async def transaction(client: aiosmtplib.SMTP, sender: str, recipient: str, message: bytes) -> None:
    """MAIL, RCPT and DATA for one recipient, with aiosmtplib's command API.

    What ``SMTP.sendmail`` does, minus the work that is already done here: the addresses
    were validated when the directory was loaded (sendmail parses each of them four times)
    and ``compose`` writes CRLF line ends (sendmail normalizes the whole message twice).
    Those two made a quarter of the service's time per message. ``execute_command`` still
    refuses control characters in a command, so nothing can be injected."""
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    smtputf8 = not (sender.isascii() and recipient.isascii())
    encoding = "utf-8" if smtputf8 else "ascii"
    options = [b"SIZE=%d" % len(message)] if client.supports_extension("size") else []
    if smtputf8:
        options.append(b"SMTPUTF8")
    try:
        reply = await client.execute_command(
            b"MAIL", b"FROM:<" + sender.encode(encoding) + b">", *options
        )
        if reply.code != 250:
            raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
        reply = await client.execute_command(b"RCPT", b"TO:<" + recipient.encode(encoding) + b">")
        if reply.code not in (250, 251):
            refused = aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
            raise aiosmtplib.SMTPRecipientsRefused([refused])
        await client.data(message)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        with suppress(ConnectionError, aiosmtplib.SMTPResponseException):
            await client.rset()  # a clean envelope for the connection's next message
        raise


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.smtp_ca_file is None:
        return None
    return ssl.create_default_context(cafile=str(settings.smtp_ca_file))


class SmtpPool:
    """Up to ``size`` open connections, reused; a connection that failed is dropped."""

    def __init__(self, settings: Settings, limiter: RateLimiter | None = None) -> None:
        self._settings = settings
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(settings.smtp_connections)
        self._limiter = limiter or RateLimiter.from_rates(
            settings.smtp_rate_per_second, settings.smtp_rate_per_hour
        )
        self._tls = tls_context(settings)
        self._in_use = 0

    @property
    def size(self) -> int:
        return self._settings.smtp_connections

    @property
    def in_use(self) -> int:
        """Connections sending (or opening) right now."""
        return self._in_use

    @property
    def idle(self) -> int:
        """Open connections waiting in the pool for the next message."""
        return self._idle.qsize()

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls,
            validate_certs=s.smtp_validate_certs,
            tls_context=self._tls,
            timeout=s.smtp_timeout_seconds,
        )

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        async with self._slots:
            client = self._idle.get_nowait() if not self._idle.empty() else self._client()
            self._in_use += 1
            try:
                if not client.is_connected:
                    await client.connect()
                yield client
            except aiosmtplib.SMTPResponseException:
                # the server answered (and aiosmtplib reset the envelope): still usable
                if client.is_connected:
                    self._idle.put_nowait(client)
                raise
            except BaseException:
                client.close()
                raise
            finally:
                self._in_use -= 1
            self._idle.put_nowait(client)

    async def send(
        self,
        sender: str,
        recipient: str,
        message: bytes,
        *,
        trace: tracing.Attempt | None = None,
    ) -> None:
        """Send one message to one recipient; raises one of ``SEND_ERRORS`` (see
        ``classify``). A pooled connection the server has since closed is replaced once,
        transparently. With ``trace`` (tracing on), the transaction is a CLIENT span
        (``smtp send``; the recipient's address is not recorded)."""
        await self._limiter.acquire()
        if trace is None:
            await self._send(sender, recipient, message)
            return
        with tracing.client_span("smtp send", trace, self._span_attributes(message)) as span:
            try:
                await self._send(sender, recipient, message)
            except SEND_ERRORS as exc:
                failure = classify(exc)
                error_type = str(failure.code) if failure.code else type(exc).__name__
                tracing.failed(span, error_type, failure.reason)
                raise

    async def _send(self, sender: str, recipient: str, message: bytes) -> None:
        try:
            async with self._connection() as client:
                await transaction(client, sender, recipient, message)
        except aiosmtplib.SMTPServerDisconnected:
            async with self._connection() as client:
                await transaction(client, sender, recipient, message)

    def _span_attributes(self, message: bytes) -> dict[str, str | int]:
        return {
            "server.address": self._settings.smtp_host,
            "server.port": self._settings.smtp_port,
            "network.protocol.name": "smtp",
            "gnlc.smtp.message_bytes": len(message),
        }

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
