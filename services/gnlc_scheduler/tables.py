"""The scheduler's tables (migrations: gnlc_core/migrations/versions/0100_scheduler.py,
0101_outbox_attempts.py,
0102_languages.py, 0103_deadline_revision.py, 0104_outbox_trace.py, 0105_city_digest.py)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
    text,
)

from gnlc_core.db import metadata

cities = Table(
    "cities",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("country", String(2), nullable=False),
    Column("region", String(100), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("language", String(35), nullable=False),
    Column("languages", JSON, nullable=True),  # the chain, ``language`` first; null: just it
    Column("contacts", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("digest", Boolean, nullable=False, server_default=false()),  # 0105
)

deadlines = Table(
    "deadlines",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("title", JSON, nullable=False),
    Column("description", JSON, nullable=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("audience", JSON, nullable=False),
    Column("reminders", JSON, nullable=False),
    Column("delivery_hour", Integer, nullable=True),
    Column("link", Text, nullable=True),
    Column("links", JSON, nullable=True),  # a link per language, where ``link`` is null
    Column("state", String(16), nullable=False),  # store.DeadlineState: active | cancelled
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # the calendar entry's SEQUENCE, and when it was raised (its DTSTAMP); store.ENTRY_FIELDS
    Column("revision", Integer, nullable=False, server_default=text("0")),
    Column("revised_at", DateTime(timezone=True), nullable=True),
)

submissions = Table(
    "submissions",
    metadata,
    Column("deadline_id", String(63), primary_key=True),
    Column("city_id", String(63), primary_key=True),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("source", String(100), nullable=False),
)

announcements = Table(
    "announcements",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("category", String(16), nullable=False),
    Column("title", JSON, nullable=False),
    Column("body", JSON, nullable=False),
    Column("audience", JSON, nullable=False),
    Column("link", Text, nullable=True),
    Column("links", JSON, nullable=True),  # a link per language, where ``link`` is null
    Column("publish_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),  # store.AnnouncementState
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Every event the scheduler will emit, with its instant: the outbox the dispatcher drains.
outbox = Table(
    "outbox",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("fire_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),  # store.OutboxState
    Column("deadline_id", String(63), nullable=True),
    Column("city_id", String(63), nullable=True),
    Column("announcement_id", String(63), nullable=True),
    Column("step", String(32), nullable=True),
    Column("partition_key", String(200), nullable=False),
    Column("data", JSON, nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    Column("emitted_at", DateTime(timezone=True), nullable=True),
    # publishing failures: how many, when to try again, and the last reason
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("first_attempt_at", DateTime(timezone=True), nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    # the API call's trace context (gnlc_core.tracing.stored_trace); null when tracing is off
    Column("trace", JSON, nullable=True),
    Index("ix_outbox_state_fire_at", "state", "fire_at"),
    Index("ix_outbox_deadline_city", "deadline_id", "city_id"),
)
