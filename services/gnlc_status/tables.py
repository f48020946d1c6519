"""The status service's tables (migrations: gnlc_core/migrations/versions/0400_status.py,
0410_dead_letters.py, 0420_status_history.py)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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

#: One row per record of a dead-letter topic (migration 0410): where it was parked, why,
#: what it was about when that can be read, its value and key (to redrive it), and whether
#: and by whom it was redriven.
dead_letters = Table(
    "status_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("source_topic", String(255), nullable=True),
    Column("reason", Text, nullable=False),
    Column("recipient", String(320), nullable=True),
    Column("key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("event_id", String(64), nullable=True),
    Column("event_type", String(64), nullable=True),
    Column("parked_at", DateTime(timezone=True), nullable=False),
    Column("redriven_at", DateTime(timezone=True), nullable=True),
    Column("redriven_by", String(100), nullable=True),
    Column("redrive_count", Integer, nullable=False, server_default="0"),
    Column("redrive_topic", String(255), nullable=True),
    UniqueConstraint("topic", "partition", "offset", name="uq_status_dead_letters_record"),
    Index("ix_status_dead_letters_parked", "parked_at"),
    Index("ix_status_dead_letters_twins", "source_topic", "digest"),
)

#: Every state a notice went through, one row per receipt (migration 0420): the state, the
#: attempts, the reason, when the state was reached (``state_time``, the receipt's time) and
#: when the view read it. A receipt read twice is one row (unique on what its id is made
#: of: the notice, the moment, the state and the attempts); at most
#: ``gnlc_status.history.KEPT`` rows per notice are kept, the latest (``state_us``).
status_history = Table(
    "status_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("state_us", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("reason", Text, nullable=True),
    Column("state_time", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint(
        "event_id",
        "channel",
        "recipient",
        "state_us",
        "state",
        "attempts",
        name="uq_status_history_receipt",
    ),
)
