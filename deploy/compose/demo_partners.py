"""The compose file's init step: the demo partners file with a webhook secret generated
inside compose, once (``python demo_partners.py TEMPLATE OUT``).

``${DEMO_PARTNER_SECRET}`` in the template becomes a fresh ``whsec_`` secret; an existing
``OUT`` is kept, so the webhook service and the receiver agree across restarts. The file is
written readable by its owner only (every container runs as the image's user).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gnlc_webhook.partners import load_endpoints, new_secret

PLACEHOLDER = "${DEMO_PARTNER_SECRET}"


def write_once(template: Path, out: Path) -> bool:
    """Writes ``out`` unless it exists; True when it wrote it."""
    if out.exists():
        return False
    text = template.read_text(encoding="utf-8")
    if PLACEHOLDER not in text:
        raise SystemExit(f"{template}: no {PLACEHOLDER} to fill in")
    partial = out.with_name(out.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text.replace(PLACEHOLDER, new_secret()))
    load_endpoints(partial)  # refuse to leave a file the services cannot read
    partial.replace(out)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python demo_partners.py TEMPLATE OUT\n")
        return 2
    template, out = Path(argv[0]), Path(argv[1])
    wrote = write_once(template, out)
    print(f"demo partners: {out} {'written' if wrote else 'kept'}", flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
