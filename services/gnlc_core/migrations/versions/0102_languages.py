"""Scheduler: a city's languages in order of preference (``cities.languages``, the first
the primary, which ``language`` still holds), and a link per language for deadlines and
announcements (``links``; ``link`` keeps one link for every language).

Revision ID: 0102
Revises: 0101
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0102"
down_revision: str | Sequence[str] | None = "0101"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cities") as batch:
        batch.add_column(sa.Column("languages", sa.JSON, nullable=True))
    for table in ("deadlines", "announcements"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("links", sa.JSON, nullable=True))


def downgrade() -> None:
    for table in ("announcements", "deadlines"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("links")
    with op.batch_alter_table("cities") as batch:
        batch.drop_column("languages")
