"""webhook inbox and event outbox

Revision ID: d9d57526c110
Revises: 3b7d2c9e41a0
Create Date: 2026-11-22 02:20:53.975086
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import paymod.persistence.types

revision: str = "d9d57526c110"
down_revision: str | None = "3b7d2c9e41a0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column(
            "sequence",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "data",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("payment_collection_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("available_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("dispatched_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            paymod.persistence.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'dispatched', 'failed')", name=op.f("event_outbox_status_check")
        ),
        sa.PrimaryKeyConstraint("sequence", name=op.f("event_outbox_pkey")),
    )
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.create_index("IDX_event_outbox_id_unique", ["id"], unique=True)
        batch_op.create_index(
            "IDX_event_outbox_status_available_at", ["status", "available_at"], unique=False
        )

    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column(
            "events",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            paymod.persistence.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            paymod.persistence.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("deleted_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_endpoint_pkey")),
    )
    op.create_table(
        "webhook_event",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("amount", paymod.persistence.types.Amount(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("available_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("processed_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            paymod.persistence.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            paymod.persistence.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processed', 'ignored', 'failed')", name=op.f("webhook_event_status_check")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_event_pkey")),
    )
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_webhook_event_provider_id_event_id_unique", ["provider_id", "event_id"], unique=True
        )
        batch_op.create_index(
            "IDX_webhook_event_status_available_at", ["status", "available_at"], unique=False
        )

    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("endpoint_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_sequence", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("payment_collection_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("available_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("delivered_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            paymod.persistence.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("webhook_delivery_status_check")
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoint.id"],
            name=op.f("webhook_delivery_endpoint_id_foreign"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_delivery_pkey")),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_webhook_delivery_endpoint_id_event_id_unique", ["endpoint_id", "event_id"], unique=True
        )
        batch_op.create_index(
            "IDX_webhook_delivery_status_available_at", ["status", "available_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index("IDX_webhook_delivery_status_available_at")
        batch_op.drop_index("IDX_webhook_delivery_endpoint_id_event_id_unique")

    op.drop_table("webhook_delivery")
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.drop_index("IDX_webhook_event_status_available_at")
        batch_op.drop_index("IDX_webhook_event_provider_id_event_id_unique")

    op.drop_table("webhook_event")
    op.drop_table("webhook_endpoint")
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.drop_index("IDX_event_outbox_status_available_at")
        batch_op.drop_index("IDX_event_outbox_id_unique")

    op.drop_table("event_outbox")
