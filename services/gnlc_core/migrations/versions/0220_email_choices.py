"""Email: what each contact chose on the preference page (categories, digest).

Revision ID: 0220
Revises: 0210
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0220"
down_revision: str | Sequence[str] | None = "0210"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_choices",
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("city_id", sa.String(64), nullable=False),
        sa.Column("categories_off", sa.String(64), nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_email_choices"),
    )


def downgrade() -> None:
    op.drop_table("email_choices")
