"""Operator console: the partner portal's sessions (a partner signed in with its webhook
API token; the token sealed with a key only the session's cookie can derive).

Revision ID: 0510
Revises: 0500
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0510"
down_revision: str | Sequence[str] | None = "0500"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_partner_sessions",
        # sha256 of the cookie's value: a copy of the table opens no session, and without
        # the cookie's value the sealed token cannot be opened either
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("partner_id", sa.String(63), nullable=False),
        sa.Column("partner_name", sa.String(200), nullable=False),
        sa.Column("token_sealed", sa.Text, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_partner_sessions")
