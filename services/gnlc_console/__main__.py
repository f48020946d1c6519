"""``python -m gnlc_console``: run the operator console (``add-user`` manages accounts)."""

import sys

from gnlc_console.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
