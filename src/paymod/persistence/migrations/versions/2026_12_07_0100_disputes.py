"""disputes: chargebacks of payments as their providers report them, and stored webhooks the dispute
they report

Revision ID: d15b07e5a001
Revises: 7c3e1f5b9a42
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from paymod.persistence.types import Amount, JSONDocument, UTCDateTime

revision: str = "d15b07e5a001"
down_revision: str | None = "7c3e1f5b9a42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The statuses as they stood when this migration was written (a migration keeps its own copy).
STATUSES = (
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
)


def upgrade() -> None:
    op.create_table(
        "dispute",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("provider_dispute_id", sa.Text(), nullable=False),
        sa.Column("amount", Amount(), nullable=False),
        sa.Column("currency_code", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("evidence_due_by", UTCDateTime(), nullable=True),
        sa.Column("funds_withdrawn", sa.Boolean(), nullable=True),
        sa.Column("funds_reinstated", sa.Boolean(), nullable=True),
        sa.Column("data", JSONDocument, nullable=True),
        sa.Column("evidence_submitted_at", UTCDateTime(), nullable=True),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name=op.f("dispute_status_check")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payment.id"],
            name=op.f("dispute_payment_id_foreign"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("dispute_pkey")),
    )
    op.create_index("IDX_dispute_provider_dispute_id_unique", "dispute", ["provider_dispute_id"], unique=True)
    op.create_index("IDX_dispute_payment_id", "dispute", ["payment_id"])
    op.create_index("IDX_dispute_status", "dispute", ["status"])
    op.create_index("IDX_dispute_created_at", "dispute", ["created_at"])
    op.add_column("webhook_event", sa.Column("dispute", JSONDocument, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_event") as batch:
        batch.drop_column("dispute")
    op.drop_table("dispute")
