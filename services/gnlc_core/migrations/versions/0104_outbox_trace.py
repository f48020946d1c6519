"""Scheduler outbox: the trace context of the API call that wrote a row (``traceparent``,
``tracestate`` and when), so the emit continues or links to it (``gnlc_core.tracing``).
Null when tracing is off.

Revision ID: 0104
Revises: 0103
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0104"
down_revision: str | Sequence[str] | None = "0103"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("trace", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("trace")
