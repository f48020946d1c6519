"""Operator console: its accounts and their sessions (nothing else: the console reads and
changes everything else through the services' APIs).

Revision ID: 0500
Revises: (none: the console keeps no ledger)
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0500"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("console",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "console_sessions",
        # sha256 of the cookie's value: a copy of the table opens no session
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_name",
            sa.String(63),
            sa.ForeignKey("console_users.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
    )
    op.create_index("ix_console_sessions_user_name", "console_sessions", ["user_name"])


def downgrade() -> None:
    op.drop_index("ix_console_sessions_user_name", "console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
