"""Webhook consumer service: signed Standard Webhooks deliveries to partner systems."""
