"""The operator CLI: ``gnlc-notify --help``."""
