"""``python -m gnlc_core.healthcheck URL``: exit 0 when ``URL`` answers 200, 1 otherwise.

The container healthcheck of the image (the slim base has neither curl nor wget): standard
library only, so it starts fast and never imports the service.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 5.0


def healthy(url: str, timeout: float = TIMEOUT_SECONDS) -> bool:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - scheme checked
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m gnlc_core.healthcheck URL\n")
        return 2
    return 0 if healthy(argv[0]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
