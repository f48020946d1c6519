"""Email: which cities received which revision of each deadline's calendar entry, so that
an update or a cancellation reaches exactly them; and the latest change of each entry, for
a city whose older entry is delivered after the change was handled.

Revision ID: 0202
Revises: 0201
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0202"
down_revision: str | Sequence[str] | None = "0201"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_calendar_entries",
        sa.Column("deadline_id", sa.String(63), nullable=False),
        sa.Column("city_id", sa.String(63), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("deadline_id", "city_id", name="pk_email_calendar_entries"),
    )
    op.create_table(
        "email_calendar_changes",
        sa.Column("deadline_id", sa.String(63), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("deadline_id", name="pk_email_calendar_changes"),
    )


def downgrade() -> None:
    op.drop_table("email_calendar_changes")
    op.drop_table("email_calendar_entries")
