"""Email: unsubscribe preferences and the service's generated keys.

Revision ID: 0200
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0200"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("email",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_unsubscribes",
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("city_id", sa.String(64), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_email_unsubscribes"),
    )
    op.create_table(
        "email_keys",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_email_keys"),
    )


def downgrade() -> None:
    op.drop_table("email_keys")
    op.drop_table("email_unsubscribes")
