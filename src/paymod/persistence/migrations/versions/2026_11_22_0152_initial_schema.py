"""initial schema

Revision ID: ef675400047d
Revises:
Create Date: 2026-11-22 01:52:32.370524
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import paymod.persistence.types

revision: str = "ef675400047d"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_holder",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("customer_id", sa.Text(), nullable=True),
        sa.Column(
            "data",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
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
        sa.Column("deleted_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("account_holder_pkey")),
    )
    with op.batch_alter_table("account_holder", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_account_holder_deleted_at",
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "IDX_account_holder_provider_id_customer_id_unique",
            ["provider_id", "customer_id"],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "IDX_account_holder_provider_id_external_id_unique",
            ["provider_id", "external_id"],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "payment_collection",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("currency_code", sa.Text(), nullable=False),
        sa.Column("amount", paymod.persistence.types.Amount(), nullable=False),
        sa.Column("authorized_amount", paymod.persistence.types.Amount(), nullable=True),
        sa.Column("captured_amount", paymod.persistence.types.Amount(), nullable=True),
        sa.Column("refunded_amount", paymod.persistence.types.Amount(), nullable=True),
        sa.Column("completed_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default="not_paid", nullable=False),
        sa.Column(
            "metadata",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
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
        sa.Column("deleted_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('not_paid', 'awaiting', 'authorized', 'partially_authorized', 'canceled', 'failed', 'partially_captured', 'completed')",
            name=op.f("payment_collection_status_check"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("payment_collection_pkey")),
    )
    with op.batch_alter_table("payment_collection", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_payment_collection_deleted_at",
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "payment_provider",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
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
        sa.Column("deleted_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("payment_provider_pkey")),
    )
    with op.batch_alter_table("payment_provider", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_payment_provider_deleted_at",
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "refund_reason",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
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
        sa.Column("deleted_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("refund_reason_pkey")),
    )
    with op.batch_alter_table("refund_reason", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_refund_reason_deleted_at",
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "region_payment_provider",
        sa.Column("region_id", sa.Text(), nullable=False),
        sa.Column("payment_provider_id", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            paymod.persistence.types.UTCDateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint(
            "region_id", "payment_provider_id", name=op.f("region_payment_provider_pkey")
        ),
    )
    with op.batch_alter_table("region_payment_provider", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_region_payment_provider_payment_provider_id", ["payment_provider_id"], unique=False
        )

    op.create_table(
        "payment",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("amount", paymod.persistence.types.Amount(), nullable=False),
        sa.Column("currency_code", sa.Text(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column(
            "data",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column(
            "metadata",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("captured_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("payment_collection_id", sa.Text(), nullable=False),
        sa.Column("payment_session_id", sa.Text(), nullable=False),
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
        sa.Column("deleted_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_collection_id"],
            ["payment_collection.id"],
            name=op.f("payment_payment_collection_id_foreign"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("payment_pkey")),
    )
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_payment_deleted_at",
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "IDX_payment_payment_collection_id",
            ["payment_collection_id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "IDX_payment_payment_session_id",
            ["payment_session_id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "IDX_payment_payment_session_id_unique",
            ["payment_session_id"],
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "IDX_payment_provider_id",
            ["provider_id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "payment_collection_payment_providers",
        sa.Column("payment_collection_id", sa.Text(), nullable=False),
        sa.Column("payment_provider_id", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_collection_id"],
            ["payment_collection.id"],
            name=op.f("payment_collection_payment_providers_payment_collection_id_foreign"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["payment_provider_id"],
            ["payment_provider.id"],
            name=op.f("payment_collection_payment_providers_payment_provider_id_foreign"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "payment_collection_id",
            "payment_provider_id",
            name=op.f("payment_collection_payment_providers_pkey"),
        ),
    )
    op.create_table(
        "payment_session",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("currency_code", sa.Text(), nullable=False),
        sa.Column("amount", paymod.persistence.types.Amount(), nullable=False),
        sa.Column("provider_id", sa.Text(), nullable=False),
        sa.Column(
            "data",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "context",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("authorized_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("payment_collection_id", sa.Text(), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
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
        sa.Column("deleted_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('authorized', 'captured', 'pending', 'requires_more', 'error', 'canceled', 'pending_authorization')",
            name=op.f("payment_session_status_check"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_collection_id"],
            ["payment_collection.id"],
            name=op.f("payment_session_payment_collection_id_foreign"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("payment_session_pkey")),
    )
    with op.batch_alter_table("payment_session", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_payment_session_deleted_at",
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "IDX_payment_session_payment_collection_id",
            ["payment_collection_id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "capture",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("amount", paymod.persistence.types.Amount(), nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("created_by", sa.Text(), nullable=True),
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
        sa.Column("deleted_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payment.id"],
            name=op.f("capture_payment_id_foreign"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("capture_pkey")),
    )
    with op.batch_alter_table("capture", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_capture_deleted_at",
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "IDX_capture_payment_id",
            ["payment_id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "refund",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("amount", paymod.persistence.types.Amount(), nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column("refund_reason_id", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
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
        sa.Column("deleted_at", paymod.persistence.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payment.id"],
            name=op.f("refund_payment_id_foreign"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["refund_reason_id"],
            ["refund_reason.id"],
            name=op.f("refund_refund_reason_id_foreign"),
            onupdate="CASCADE",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("refund_pkey")),
    )
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.create_index(
            "IDX_refund_deleted_at",
            ["deleted_at"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "IDX_refund_payment_id",
            ["payment_id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "IDX_refund_refund_reason_id",
            ["refund_reason_id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    # Medusa seeds three refund reasons when the table is empty (reference 1.6).
    refund_reason = sa.table(
        "refund_reason",
        sa.column("id", sa.Text()),
        sa.column("label", sa.Text()),
        sa.column("code", sa.Text()),
        sa.column("description", sa.Text()),
    )
    op.bulk_insert(
        refund_reason,
        [
            {
                "id": "refr_01SEEDSHIPPINGISSUE000000",
                "label": "Shipping Issue",
                "code": "shipping_issue",
                "description": "Refund due to lost, delayed, or misdelivered shipment",
            },
            {
                "id": "refr_01SEEDCUSTOMERCARE0000000",
                "label": "Customer Care Adjustment",
                "code": "customer_care_adjustment",
                "description": "Refund given as goodwill or compensation for inconvenience",
            },
            {
                "id": "refr_01SEEDPRICINGERROR0000000",
                "label": "Pricing Error",
                "code": "pricing_error",
                "description": "Refund to correct an overcharge, missing discount, or incorrect price",
            },
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.drop_index(
            "IDX_refund_refund_reason_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "IDX_refund_payment_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "IDX_refund_deleted_at",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("refund")
    with op.batch_alter_table("capture", schema=None) as batch_op:
        batch_op.drop_index(
            "IDX_capture_payment_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "IDX_capture_deleted_at",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("capture")
    with op.batch_alter_table("payment_session", schema=None) as batch_op:
        batch_op.drop_index(
            "IDX_payment_session_payment_collection_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "IDX_payment_session_deleted_at",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("payment_session")
    op.drop_table("payment_collection_payment_providers")
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.drop_index(
            "IDX_payment_provider_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "IDX_payment_payment_session_id_unique",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "IDX_payment_payment_session_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "IDX_payment_payment_collection_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "IDX_payment_deleted_at",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("payment")
    with op.batch_alter_table("region_payment_provider", schema=None) as batch_op:
        batch_op.drop_index("IDX_region_payment_provider_payment_provider_id")

    op.drop_table("region_payment_provider")
    with op.batch_alter_table("refund_reason", schema=None) as batch_op:
        batch_op.drop_index(
            "IDX_refund_reason_deleted_at",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("refund_reason")
    with op.batch_alter_table("payment_provider", schema=None) as batch_op:
        batch_op.drop_index(
            "IDX_payment_provider_deleted_at",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("payment_provider")
    with op.batch_alter_table("payment_collection", schema=None) as batch_op:
        batch_op.drop_index(
            "IDX_payment_collection_deleted_at",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("payment_collection")
    with op.batch_alter_table("account_holder", schema=None) as batch_op:
        batch_op.drop_index(
            "IDX_account_holder_provider_id_external_id_unique",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "IDX_account_holder_deleted_at",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    op.drop_table("account_holder")
