"""Email consumer service: renders events into MIME mail for member cities."""
