"""Webhook channel: partners, endpoints, delivery attempts and stored payloads.

Revision ID: 0300
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0300"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("webhook",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_partners",
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_partners"),
        sa.UniqueConstraint("token_hash", name="uq_webhook_partners_token_hash"),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("partner_id", sa.String(63), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_types", sa.JSON, nullable=False),
        sa.Column("regions", sa.JSON, nullable=False),
        sa.Column("cities", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text, nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_reason", sa.Text, nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_concurrency", sa.Integer, nullable=True),
        sa.Column("rate_per_second", sa.Float, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoints"),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["webhook_partners.id"],
            name="fk_webhook_endpoints_partner_id_webhook_partners",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_webhook_endpoints_partner_id", "webhook_endpoints", ["partner_id"])
    op.create_table(
        "webhook_messages",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_webhook_messages"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("endpoint_id", sa.String(63), nullable=False),
        sa.Column("partner_id", sa.String(63), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_attempts"),
    )
    op.create_index("ix_webhook_attempts_endpoint_at", "webhook_attempts", ["endpoint_id", "at"])
    op.create_index(
        "ix_webhook_attempts_event_endpoint", "webhook_attempts", ["event_id", "endpoint_id"]
    )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_messages")
    op.drop_index("ix_webhook_endpoints_partner_id", "webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_table("webhook_partners")
