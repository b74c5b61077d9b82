"""released authorizations: what a provider released uncaptured, and what a webhook says stays capturable

Revision ID: 7e2b9c4a1d60
Revises: 5c1e0a7d9b3f
Create Date: 2026-11-29 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paymod.persistence.types

revision: str = "7e2b9c4a1d60"
down_revision: str | None = "5c1e0a7d9b3f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment") as batch:
        batch.add_column(sa.Column("released_amount", paymod.persistence.types.Amount(), nullable=True))
    with op.batch_alter_table("webhook_event") as batch:
        batch.add_column(sa.Column("remaining_capturable", paymod.persistence.types.Amount(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_event") as batch:
        batch.drop_column("remaining_capturable")
    with op.batch_alter_table("payment") as batch:
        batch.drop_column("released_amount")
