"""Local stand-ins for the outside world, for the local run and the tests: an SMTP mailbox
that keeps what it receives and a webhook receiver that verifies every signature."""
