"""Status service: the records of the dead-letter topics, and their redrives.

Revision ID: 0410
Revises: 0400
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0410"
down_revision: str | Sequence[str] | None = "0400"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "status_dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("source_topic", sa.String(255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("event_type", sa.String(64), nullable=True),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redriven_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redriven_by", sa.String(100), nullable=True),
        sa.Column("redrive_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("redrive_topic", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_status_dead_letters"),
        sa.UniqueConstraint("topic", "partition", "offset", name="uq_status_dead_letters_record"),
    )
    op.create_index("ix_status_dead_letters_parked", "status_dead_letters", ["parked_at"])
    op.create_index(
        "ix_status_dead_letters_twins", "status_dead_letters", ["source_topic", "digest"]
    )


def downgrade() -> None:
    op.drop_table("status_dead_letters")
