"""Webhook channel: endpoints that take one partition key's deliveries in order.

``webhook_endpoints.ordered`` (default false) and ``webhook_key_order``: a row per delivery
of an ordered endpoint not known to be settled, numbered in the order its events were read
(``seq``), so the first unsettled row of each (endpoint, partition key) is the one that may
be sent. The key is kept as its SHA-256 (hex): partition keys have no length limit.

Revision ID: 0310
Revises: 0301
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0310"
down_revision: str | Sequence[str] | None = "0301"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(
            sa.Column("ordered", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "webhook_key_order",
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("endpoint_id", sa.String(63), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_webhook_key_order"),
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_key_order_event"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_webhook_key_order_key", "webhook_key_order", ["endpoint_id", "key_hash", "seq"]
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_key_order_key", table_name="webhook_key_order")
    op.drop_table("webhook_key_order")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("ordered")
