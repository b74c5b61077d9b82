"""worker lanes: index-backed claims of the outbox and deliveries, endpoint lanes and backoff, retention

Revision ID: 3a8f5d2e6c71
Revises: 7e2b9c4a1d60
Create Date: 2026-11-29 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paymod.persistence.types

revision: str = "3a8f5d2e6c71"
down_revision: str | None = "7e2b9c4a1d60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, paymod.persistence.types.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.drop_index("IDX_event_outbox_status_available_at", table_name="event_outbox")
    op.create_index(
        "IDX_event_outbox_pending_sequence",
        "event_outbox",
        ["sequence"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "IDX_event_outbox_pending_collection",
        "event_outbox",
        ["payment_collection_id", "sequence"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index("IDX_event_outbox_created_at", "event_outbox", ["created_at"])

    op.drop_index("IDX_webhook_delivery_status_available_at", table_name="webhook_delivery")
    op.create_index(
        "IDX_webhook_delivery_pending_endpoint",
        "webhook_delivery",
        ["endpoint_id", "event_sequence"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "IDX_webhook_delivery_pending_collection",
        "webhook_delivery",
        ["endpoint_id", "payment_collection_id", "event_sequence"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index("IDX_webhook_delivery_created_at", "webhook_delivery", ["created_at"])

    op.create_index("IDX_webhook_event_created_at", "webhook_event", ["created_at"])
    op.create_index("IDX_workflow_run_completed_at", "workflow_run", ["completed_at"])

    with op.batch_alter_table("webhook_endpoint") as batch:
        batch.add_column(_timestamp("lane_locked_until"))
        batch.add_column(sa.Column("lane_owner", sa.Text(), nullable=True))
        batch.add_column(_timestamp("failing_since"))
        batch.add_column(sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(_timestamp("retry_at"))
        batch.add_column(_timestamp("disabled_at"))
        batch.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoint") as batch:
        for column in (
            "disabled_reason",
            "disabled_at",
            "retry_at",
            "consecutive_failures",
            "failing_since",
            "lane_owner",
            "lane_locked_until",
        ):
            batch.drop_column(column)
    op.drop_index("IDX_workflow_run_completed_at", table_name="workflow_run")
    op.drop_index("IDX_webhook_event_created_at", table_name="webhook_event")
    op.drop_index("IDX_webhook_delivery_created_at", table_name="webhook_delivery")
    op.drop_index("IDX_webhook_delivery_pending_collection", table_name="webhook_delivery")
    op.drop_index("IDX_webhook_delivery_pending_endpoint", table_name="webhook_delivery")
    op.create_index(
        "IDX_webhook_delivery_status_available_at", "webhook_delivery", ["status", "available_at"]
    )
    op.drop_index("IDX_event_outbox_created_at", table_name="event_outbox")
    op.drop_index("IDX_event_outbox_pending_collection", table_name="event_outbox")
    op.drop_index("IDX_event_outbox_pending_sequence", table_name="event_outbox")
    op.create_index("IDX_event_outbox_status_available_at", "event_outbox", ["status", "available_at"])
