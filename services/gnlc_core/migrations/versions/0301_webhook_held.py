"""Webhook channel: deliveries held while their endpoint hangs, found by endpoint.

Revision ID: 0301
Revises: 0300
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0301"
down_revision: str | Sequence[str] | None = "0300"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HELD = sa.text("status = 'held'")


def upgrade() -> None:
    op.create_index(
        "ix_notices_held",
        "notices",
        ["channel", "recipient"],
        postgresql_where=HELD,
        sqlite_where=HELD,
    )


def downgrade() -> None:
    op.drop_index("ix_notices_held", table_name="notices")
