"""DKIM signatures (RFC 6376) with dkimpy, for deployments that send straight to the internet
rather than through a relay that signs.

Signed: From, To, Subject, Date, Message-ID, Reply-To, ``List-Unsubscribe`` and
``List-Unsubscribe-Post`` (RFC 8058 section 4 requires both to be covered by a valid DKIM
signature for one-click unsubscribe to be honoured) and the MIME headers (MIME-Version,
Content-Type, Content-Language). Names in the list that a message lacks are signed as
absent (RFC 6376 section 5.4), so nobody can add them later: a reminder cannot be given a
``List-Unsubscribe`` on the way. Canonicalization relaxed/relaxed, RSA-SHA256.

The key is a PEM private key (RSA, 2048 bits or more), read from a file
(``GNLC_DKIM_PRIVATE_KEY_PATH``) or given in a secret variable (``GNLC_DKIM_PRIVATE_KEY``);
the public key goes into DNS as ``<selector>._domainkey.<domain> TXT "v=DKIM1; k=rsa;
p=<base64 DER>"``. The key is tried once at start, so a bad key stops the service rather
than every message.
"""

from __future__ import annotations

import dkim

from gnlc_core.settings import Settings

SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
    "Content-Language",
)
_PROBE = b"From: probe@example.org\r\nSubject: probe\r\n\r\nprobe\r\n"


class DkimSigner:
    def __init__(self, selector: str, domain: str, private_key: bytes) -> None:
        self._selector = selector.encode()
        self._domain = domain.encode()
        self._key = private_key
        self._headers = [name.encode() for name in SIGNED_HEADERS]
        try:
            self.sign(_PROBE)
        except dkim.DKIMException as exc:
            raise ValueError(f"the DKIM private key cannot sign: {exc}") from None

    def sign(self, message: bytes) -> bytes:
        """``message`` with its ``DKIM-Signature`` header in front."""
        signature = dkim.sign(
            message,
            self._selector,
            self._domain,
            self._key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=self._headers,
        )
        return bytes(signature) + message

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """The signer the settings ask for; None when DKIM is off (no domain, selector or
        key set). A partial configuration is an error naming what is missing."""
        key_path, key = settings.dkim_private_key_path, settings.dkim_private_key
        given = {
            "GNLC_DKIM_DOMAIN": bool(settings.dkim_domain),
            "GNLC_DKIM_SELECTOR": bool(settings.dkim_selector),
            "GNLC_DKIM_PRIVATE_KEY_PATH or GNLC_DKIM_PRIVATE_KEY": bool(key_path or key),
        }
        if not any(given.values()):
            return None
        missing = [name for name, ok in given.items() if not ok]
        if missing:
            raise ValueError(f"DKIM signing needs {', '.join(missing)} as well")
        if key_path and key:
            raise ValueError("set GNLC_DKIM_PRIVATE_KEY_PATH or GNLC_DKIM_PRIVATE_KEY, not both")
        if key_path:
            try:
                pem = key_path.read_bytes()
            except OSError as exc:
                raise ValueError(f"GNLC_DKIM_PRIVATE_KEY_PATH: {exc.strerror}") from None
        else:
            assert key is not None
            pem = key.get_secret_value().encode()
        return cls(str(settings.dkim_selector), str(settings.dkim_domain), pem)
