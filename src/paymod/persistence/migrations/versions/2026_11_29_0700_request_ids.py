"""request ids: the request that stored a provider event or caused a paymod event

Revision ID: 5d1f8a3c9e27
Revises: 9c4e1b7a2d58
Create Date: 2026-11-29 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d1f8a3c9e27"
down_revision: str | None = "9c4e1b7a2d58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without a default: no table rewrite on either database.
    op.add_column("webhook_event", sa.Column("request_id", sa.Text(), nullable=True))
    op.add_column("event_outbox", sa.Column("request_id", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("event_outbox") as batch:
        batch.drop_column("request_id")
    with op.batch_alter_table("webhook_event") as batch:
        batch.drop_column("request_id")
