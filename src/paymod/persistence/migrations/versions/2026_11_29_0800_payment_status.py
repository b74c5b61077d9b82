"""payment status: the dashboard's derived status stored on the payment, with an index to filter by it

Revision ID: 2b7d4e9a6c13
Revises: 5d1f8a3c9e27
Create Date: 2026-11-29 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2b7d4e9a6c13"
down_revision: str | None = "5d1f8a3c9e27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")
STATUSES = ("authorized", "partially_captured", "captured", "partially_refunded", "refunded", "canceled")

# The rule of `domain.rules.payment_status` as it stood when this migration was written (a migration
# keeps its own copy: the application's may change later). {sum} sums an amount column: NUMERIC on
# PostgreSQL; on SQLite amounts are text, and the float sum rounded to 6 places compares exactly for
# any amount a currency allows.
BACKFILL = """
UPDATE payment SET status = CASE
  WHEN canceled_at IS NOT NULL THEN 'canceled'
  WHEN (SELECT {sum} FROM refund r WHERE r.payment_id = payment.id AND r.deleted_at IS NULL) > 0 THEN
    CASE WHEN (SELECT {sum} FROM refund r WHERE r.payment_id = payment.id AND r.deleted_at IS NULL)
           >= (SELECT {sum} FROM capture c WHERE c.payment_id = payment.id AND c.deleted_at IS NULL)
      THEN 'refunded' ELSE 'partially_refunded' END
  WHEN captured_at IS NOT NULL THEN 'captured'
  WHEN (SELECT {sum} FROM capture c WHERE c.payment_id = payment.id AND c.deleted_at IS NULL) > 0
    THEN 'partially_captured'
  ELSE 'authorized'
END
"""
SUMS = {
    "postgresql": "coalesce(sum(amount), 0)",
    "sqlite": "coalesce(round(sum(CAST(amount AS REAL)), 6), 0)",
}


def upgrade() -> None:
    # Added nullable, filled, then made NOT NULL with its check: on SQLite the last step rebuilds the
    # table (migrate.py runs it with foreign keys off); on PostgreSQL it is one scan each.
    op.add_column("payment", sa.Column("status", sa.Text(), nullable=True))
    op.execute(BACKFILL.format(sum=SUMS[op.get_bind().dialect.name]))
    with op.batch_alter_table("payment") as batch:
        batch.alter_column("status", existing_type=sa.Text(), nullable=False)
        batch.create_check_constraint(
            op.f("payment_status_check"),
            "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")",
        )
    op.create_index(
        "IDX_payment_status_created_at_id",
        "payment",
        ["status", "created_at", "id"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )


def downgrade() -> None:
    op.drop_index("IDX_payment_status_created_at_id", table_name="payment")
    with op.batch_alter_table("payment") as batch:
        batch.drop_constraint(op.f("payment_status_check"), type_="check")
        batch.drop_column("status")
