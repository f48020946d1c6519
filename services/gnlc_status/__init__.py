"""The status view: every notice's latest state, built from the ``notice.status`` receipts,
and the status API over it."""
