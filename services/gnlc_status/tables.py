"""The status view's table (migration: gnlc_core/migrations/versions/0400_status.py)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text

from gnlc_core.db import metadata

#: One row per notice (event id, channel, recipient): the state that stands
#: (``gnlc_core.receipts.supersedes``) and what the receipts said about the event.
status_notices = Table(
    "status_notices",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("recipient", String(320), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("state_time", DateTime(timezone=True), nullable=False),
    # the precedence key of the state (phase, moment in microseconds, tie-break): compared
    # in the upsert itself, so concurrent writers and any order of receipts agree
    Column("phase", Integer, nullable=False),
    Column("state_us", BigInteger, nullable=False),
    Column("tie", Integer, nullable=False),
    Column("event_type", String(32), nullable=True),
    Column("event_time", DateTime(timezone=True), nullable=True),
    Column("deadline_id", String(63), nullable=True),
    Column("step", String(32), nullable=True),
    Column("announcement_id", String(63), nullable=True),
    Column("city_id", String(63), nullable=True),
    Column("partner_id", String(63), nullable=True),
    Column("send_at", DateTime(timezone=True), nullable=True),
    Index("ix_status_deadline", "deadline_id", "city_id", "step"),
    Index("ix_status_announcement", "announcement_id", "city_id"),
    Index("ix_status_city", "city_id", "state_us"),
    Index("ix_status_endpoint", "channel", "recipient", "state_us"),
    Index("ix_status_time", "state_us"),
)
