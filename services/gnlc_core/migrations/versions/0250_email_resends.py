"""Email: resends. The events the consumer handled (``email_events``, as on Kafka, kept
``resend_store.KEPT_DAYS`` days: what a resend renders again) and the resends asked for
(``email_resends``: each sent once, ``done_at`` set with its outcome in the ledger).

Revision ID: 0250
Revises: 0230
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0250"
down_revision: str | Sequence[str] | None = "0230"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_email_events"),
    )
    op.create_index("ix_email_events_kept_at", "email_events", ["kept_at"])
    op.create_table(
        "email_resends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(400), nullable=False),
        sa.Column("prior_attempts", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_email_resends"),
    )


def downgrade() -> None:
    op.drop_table("email_resends")
    op.drop_index("ix_email_events_kept_at", table_name="email_events")
    op.drop_table("email_events")
