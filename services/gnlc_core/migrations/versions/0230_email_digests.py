"""Email: daily digests. The notices held for a contact's digest (``email_digest_items``,
with the event as on Kafka, so a held notice survives any crash), the digests claimed
(``email_digests``), and the contact's digest choice of three values (on, off, as the city
decides) in place of the preference page's on/off (digests were not sent before: a stored
"off" was the default, which is now "as the city decides").

Revision ID: 0230
Revises: 0220
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0230"
down_revision: str | Sequence[str] | None = "0220"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_digests",
        sa.Column("id", sa.String(420), nullable=False),
        sa.Column("city_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_email_digests"),
    )
    op.create_index("ix_email_digests_state", "email_digests", ["state", "not_before"])
    op.create_table(
        "email_digest_items",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(400), nullable=False),
        sa.Column("city_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest_id", sa.String(420), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "recipient", name="pk_email_digest_items"),
    )
    op.create_index("ix_email_digest_items_due", "email_digest_items", ["digest_id", "due_at"])
    with op.batch_alter_table("email_choices") as batch:
        batch.add_column(
            sa.Column("digest_choice", sa.String(8), nullable=False, server_default="city")
        )
    op.execute("UPDATE email_choices SET digest_choice = 'on' WHERE digest")
    with op.batch_alter_table("email_choices") as batch:
        batch.drop_column("digest")


def downgrade() -> None:
    with op.batch_alter_table("email_choices") as batch:
        batch.add_column(
            sa.Column("digest", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE email_choices SET digest = (digest_choice = 'on')")
    with op.batch_alter_table("email_choices") as batch:
        batch.drop_column("digest_choice")
    op.drop_table("email_digest_items")
    op.drop_table("email_digests")
