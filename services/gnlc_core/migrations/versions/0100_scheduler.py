"""Scheduler state: cities, deadlines, submissions, announcements and the outbox.

Revision ID: 0100
Revises: (none: the scheduler keeps no ledger)
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0100"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("scheduler",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cities",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("region", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("language", sa.String(35), nullable=False),
        sa.Column("contacts", sa.JSON, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "deadlines",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("title", sa.JSON, nullable=False),
        sa.Column("description", sa.JSON, nullable=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("audience", sa.JSON, nullable=False),
        sa.Column("reminders", sa.JSON, nullable=False),
        sa.Column("delivery_hour", sa.Integer, nullable=True),
        sa.Column("link", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "submissions",
        sa.Column("deadline_id", sa.String(63), primary_key=True),
        sa.Column("city_id", sa.String(63), primary_key=True),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
    )
    op.create_table(
        "announcements",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("title", sa.JSON, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("audience", sa.JSON, nullable=False),
        sa.Column("link", sa.Text, nullable=True),
        sa.Column("publish_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("fire_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("deadline_id", sa.String(63), nullable=True),
        sa.Column("city_id", sa.String(63), nullable=True),
        sa.Column("announcement_id", sa.String(63), nullable=True),
        sa.Column("step", sa.String(32), nullable=True),
        sa.Column("partition_key", sa.String(200), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("emitted_at", TS, nullable=True),
    )
    op.create_index("ix_outbox_state_fire_at", "outbox", ["state", "fire_at"])
    op.create_index("ix_outbox_deadline_city", "outbox", ["deadline_id", "city_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_deadline_city", "outbox")
    op.drop_index("ix_outbox_state_fire_at", "outbox")
    for table in ("outbox", "announcements", "submissions", "deadlines", "cities"):
        op.drop_table(table)
