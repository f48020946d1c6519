"""A local SMTP server (aiosmtpd) that keeps every message it accepts.

``python -m gnlc_devtools.mailbox --dir .local/mailbox --port 8025`` stores messages as a
Maildir (``new/`` holds one file per message); in tests ``LocalMailbox`` also keeps them in
memory.
"""

from __future__ import annotations

import argparse
import asyncio
import mailbox
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gnlc_devtools.signals import wait_for_signal


class _Keeper:
    """aiosmtpd handler: accept, keep (memory and/or Maildir), answer 250."""

    def __init__(self, maildir: Path | None, keep_in_memory: bool) -> None:
        self.rcpt_delay = 0.0
        self.rcpt_seen = 0
        self.rcpt_by_address: dict[str, int] = {}
        self.rcpt_replies: dict[str, list[str]] = {}
        self.maildir = mailbox.Maildir(maildir, create=True) if maildir else None
        self.keep_in_memory = keep_in_memory
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.count = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.rcpt_seen += 1
        self.rcpt_by_address[address] = self.rcpt_by_address.get(address, 0) + 1
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        with self._lock:
            scripted = self.rcpt_replies.get(address)
            reply = scripted.pop(0) if scripted else None
        if reply is not None and not reply.startswith("250"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        if self.maildir is not None:
            self.maildir.add(raw)
        with self._lock:
            self.count += 1
            if self.keep_in_memory:
                parsed = message_from_bytes(raw, policy=policy.default)
                assert isinstance(parsed, EmailMessage)
                self.messages.append(parsed)
                self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while self.count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
        return True


class LocalMailbox:
    """An SMTP server on loopback in a background thread; a context manager."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        maildir: Path | None = None,
        keep_in_memory: bool = True,
    ) -> None:
        self._keeper = _Keeper(maildir, keep_in_memory)
        self._controller = Controller(
            self._keeper,
            hostname=host,
            port=port or _free_port(host),
            decode_data=False,
            enable_SMTPUTF8=True,
            ready_timeout=10,
            data_size_limit=10 * 1024 * 1024,
        )

    @property
    def host(self) -> str:
        return str(self._controller.hostname)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def messages(self) -> list[EmailMessage]:
        with self._keeper._lock:
            return list(self._keeper.messages)

    @property
    def rcpt_delay(self) -> float:
        """Seconds each RCPT waits before its answer (a slow server, for fault tests)."""
        return self._keeper.rcpt_delay

    @rcpt_delay.setter
    def rcpt_delay(self, seconds: float) -> None:
        self._keeper.rcpt_delay = seconds

    @property
    def recipients_seen(self) -> int:
        """RCPT commands received so far, delivered or not."""
        return self._keeper.rcpt_seen

    def script_rcpt(self, address: str, *replies: str) -> None:
        """Answer the next RCPTs for ``address`` with ``replies`` in turn ("451 4.3.0 try
        later", "550 5.1.1 no such user"), then accept as usual: fault tests."""
        with self._keeper._lock:
            self._keeper.rcpt_replies[address] = list(replies)

    def rcpt_count(self, address: str) -> int:
        """RCPT commands received for ``address`` so far, accepted or not."""
        return self._keeper.rcpt_by_address.get(address, 0)

    @property
    def count(self) -> int:
        return self._keeper.count

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Block until ``count`` messages have arrived in all; False on timeout."""
        return self._keeper.wait_for(count, timeout)

    def start(self) -> LocalMailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> LocalMailbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description="A local SMTP mailbox (Maildir).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path(".local/mailbox"))
    args = parser.parse_args()
    with LocalMailbox(host=args.host, port=args.port, maildir=args.dir, keep_in_memory=False):
        print(f"mailbox: SMTP on {args.host}:{args.port}, Maildir {args.dir}", flush=True)
        wait_for_signal()


if __name__ == "__main__":
    main()
