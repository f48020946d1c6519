"""The console's tables (migration: gnlc_core/migrations/versions/0500_console.py)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, String, Table, Text

from gnlc_core.db import metadata

users = Table(
    "console_users",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # accounts.Role
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column(
        "user_name",
        String(63),
        ForeignKey("console_users.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

#: Partner portal sessions (migration 0510): no operator rights, no account; the partner's
#: API token sealed with a key derived from the session id, which only the cookie holds.
partner_sessions = Table(
    "console_partner_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("partner_id", String(63), nullable=False),
    Column("partner_name", String(200), nullable=False),
    Column("token_sealed", Text, nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)
