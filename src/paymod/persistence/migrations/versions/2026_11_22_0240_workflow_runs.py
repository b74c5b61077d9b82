"""workflow runs

Revision ID: 8102b377c8f2
Revises: d9d57526c110
Create Date: 2026-11-22 02:40:25.417185
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import paymod.persistence.types

revision: str = "8102b377c8f2"
down_revision: str | None = "d9d57526c110"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflow_run",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column(
            "input",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "steps",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column(
            "result",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "error",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("locked_until", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
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
        sa.Column("completed_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'suspended', 'succeeded', 'failed')",
            name=op.f("workflow_run_status_check"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("workflow_run_pkey")),
    )
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_workflow_run_name_idempotency_key_unique", ["name", "idempotency_key"], unique=True
        )
        batch_op.create_index("IDX_workflow_run_status_updated_at", ["status", "updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.drop_index("IDX_workflow_run_status_updated_at")
        batch_op.drop_index("IDX_workflow_run_name_idempotency_key_unique")

    op.drop_table("workflow_run")
