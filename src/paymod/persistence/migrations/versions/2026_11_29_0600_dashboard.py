"""dashboard: operators' sessions, and the payment list's orders (created_at, amount) as indexes

Revision ID: 9c4e1b7a2d58
Revises: 3a8f5d2e6c71
Create Date: 2026-11-29 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paymod.persistence.types

revision: str = "9c4e1b7a2d58"
down_revision: str | None = "3a8f5d2e6c71"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "dashboard_session",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("api_key_id", sa.Text(), nullable=False),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            paymod.persistence.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("expires_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("dashboard_session_pkey")),
    )
    op.create_index(
        "IDX_dashboard_session_token_hash_unique", "dashboard_session", ["token_hash"], unique=True
    )
    op.create_index("IDX_dashboard_session_api_key_id", "dashboard_session", ["api_key_id"])
    op.create_index("IDX_dashboard_session_expires_at", "dashboard_session", ["expires_at"])
    for columns in (["created_at", "id"], ["amount", "id"]):
        op.create_index(
            f"IDX_payment_{'_'.join(columns)}",
            "payment",
            columns,
            postgresql_where=LIVE,
            sqlite_where=LIVE,
        )


def downgrade() -> None:
    op.drop_index("IDX_payment_amount_id", table_name="payment")
    op.drop_index("IDX_payment_created_at_id", table_name="payment")
    op.drop_table("dashboard_session")
