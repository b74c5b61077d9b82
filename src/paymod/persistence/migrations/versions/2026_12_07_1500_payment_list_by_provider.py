"""payment list by provider: the admin list filtered by provider, newest first, reads an index in its
order (provider, created_at, id) instead of every payment of the provider

Revision ID: f7c2a9b1d403
Revises: e4a1c0de5b02
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f7c2a9b1d403"
down_revision: str | None = "e4a1c0de5b02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    # The new index serves every query the provider's own index served (its first column).
    op.create_index(
        "IDX_payment_provider_id_created_at_id",
        "payment",
        ["provider_id", "created_at", "id"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.drop_index("IDX_payment_provider_id", table_name="payment")


def downgrade() -> None:
    op.create_index(
        "IDX_payment_provider_id", "payment", ["provider_id"], postgresql_where=LIVE, sqlite_where=LIVE
    )
    op.drop_index("IDX_payment_provider_id_created_at_id", table_name="payment")
