"""provider refund ids: refunds carry the provider's refund id (unique among live refunds), and stored
webhooks the refunds they report

Revision ID: 7c3e1f5b9a42
Revises: 2b7d4e9a6c13
Create Date: 2026-11-29 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from paymod.persistence.types import JSONDocument

revision: str = "7c3e1f5b9a42"
down_revision: str | None = "2b7d4e9a6c13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.add_column("refund", sa.Column("provider_refund_id", sa.Text(), nullable=True))
    op.create_index(
        "IDX_refund_provider_refund_id_unique",
        "refund",
        ["provider_refund_id"],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.add_column("webhook_event", sa.Column("refunds", JSONDocument, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_event") as batch:
        batch.drop_column("refunds")
    op.drop_index("IDX_refund_provider_refund_id_unique", table_name="refund")
    with op.batch_alter_table("refund") as batch:
        batch.drop_column("provider_refund_id")
