"""api keys and idempotency keys (HTTP service)

Revision ID: 3b7d2c9e41a0
Revises: ef675400047d
Create Date: 2026-11-22 02:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paymod.persistence.types

revision: str = "3b7d2c9e41a0"
down_revision: str | None = "ef675400047d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("redacted", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            paymod.persistence.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("revoked_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("type IN ('secret', 'publishable')", name=op.f("api_key_type_check")),
        sa.PrimaryKeyConstraint("id", name=op.f("api_key_pkey")),
    )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index("IDX_api_key_token_hash_unique", ["token_hash"], unique=True)

    op.create_table(
        "idempotency_key",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("locked_until", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            paymod.persistence.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("completed_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("idempotency_key_pkey")),
    )
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.create_index("IDX_idempotency_key_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_index("IDX_idempotency_key_created_at")
    op.drop_table("idempotency_key")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_index("IDX_api_key_token_hash_unique")
    op.drop_table("api_key")
