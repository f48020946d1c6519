"""Status view: the latest state of every notice, from the notice.status receipts.

Revision ID: 0400
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0400"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("status",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "status_notices",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("state_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("state_us", sa.BigInteger(), nullable=False),
        sa.Column("tie", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_id", sa.String(63), nullable=True),
        sa.Column("step", sa.String(32), nullable=True),
        sa.Column("announcement_id", sa.String(63), nullable=True),
        sa.Column("city_id", sa.String(63), nullable=True),
        sa.Column("partner_id", sa.String(63), nullable=True),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "channel", "recipient", name="pk_status_notices"),
    )
    op.create_index("ix_status_deadline", "status_notices", ["deadline_id", "city_id", "step"])
    op.create_index("ix_status_announcement", "status_notices", ["announcement_id", "city_id"])
    op.create_index("ix_status_city", "status_notices", ["city_id", "state_us"])
    op.create_index("ix_status_endpoint", "status_notices", ["channel", "recipient", "state_us"])
    op.create_index("ix_status_time", "status_notices", ["state_us"])


def downgrade() -> None:
    op.drop_table("status_notices")
