"""Status service: every state a notice went through (at most 50 per notice), beside the
one that stands.

Revision ID: 0420
Revises: 0410
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0420"
down_revision: str | Sequence[str] | None = "0410"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "status_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("state_us", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("state_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_status_history"),
        # what a receipt's id is made of: the same receipt twice is one row; the index
        # also serves a notice's history, latest first, and its pruning
        sa.UniqueConstraint(
            "event_id",
            "channel",
            "recipient",
            "state_us",
            "state",
            "attempts",
            name="uq_status_history_receipt",
        ),
    )


def downgrade() -> None:
    op.drop_table("status_history")
