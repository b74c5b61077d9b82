"""authorization expiry and provider sync: a payment's capture deadline (and when it was warned about and
marked expired), and the janitor's backoff on unsettled sessions

Revision ID: e4a1c0de5b02
Revises: d15b07e5a001
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from paymod.persistence.types import UTCDateTime

revision: str = "e4a1c0de5b02"
down_revision: str | None = "d15b07e5a001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_AUTHORIZATION = sa.text(
    "deleted_at IS NULL AND captured_at IS NULL AND canceled_at IS NULL"
    " AND authorization_expires_at IS NOT NULL"
)
UNSETTLED = sa.text("deleted_at IS NULL AND authorized_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("payment") as batch:
        batch.add_column(sa.Column("authorization_expires_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("expiring_notified_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("expired_at", UTCDateTime(), nullable=True))
    op.create_index(
        "IDX_payment_open_authorization_expires_at",
        "payment",
        ["authorization_expires_at"],
        postgresql_where=OPEN_AUTHORIZATION,
        sqlite_where=OPEN_AUTHORIZATION,
    )
    with op.batch_alter_table("payment_session") as batch:
        batch.add_column(sa.Column("provider_checked_at", UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("provider_check_attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("next_provider_check_at", UTCDateTime(), nullable=True))
    op.create_index(
        "IDX_payment_session_unsettled",
        "payment_session",
        ["status", "created_at"],
        postgresql_where=UNSETTLED,
        sqlite_where=UNSETTLED,
    )


def downgrade() -> None:
    op.drop_index("IDX_payment_session_unsettled", table_name="payment_session")
    with op.batch_alter_table("payment_session") as batch:
        batch.drop_column("next_provider_check_at")
        batch.drop_column("provider_check_attempts")
        batch.drop_column("provider_checked_at")
    op.drop_index("IDX_payment_open_authorization_expires_at", table_name="payment")
    with op.batch_alter_table("payment") as batch:
        batch.drop_column("expired_at")
        batch.drop_column("expiring_notified_at")
        batch.drop_column("authorization_expires_at")
