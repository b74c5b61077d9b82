"""collection safety: a payment's session is a foreign key, process heartbeats own claims, a session's
authorization claim, ephemeral keys

Revision ID: 5c1e0a7d9b3f
Revises: 8102b377c8f2
Create Date: 2026-11-29 03:00:00

A payment whose session row was deleted (possible before this revision) gets its session back as a
soft-deleted row, so the foreign key holds for every existing payment.

On SQLite the payment table is rebuilt to add the foreign key; `paymod.persistence.migrate` runs
migrations there with foreign keys switched off (SQLite's documented procedure for rebuilding a
table), so dropping the old table cannot cascade into captures and refunds.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import paymod.persistence.types

revision: str = "5c1e0a7d9b3f"
down_revision: str | None = "8102b377c8f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")
PAYMENT_INDEXES = (
    ("IDX_payment_deleted_at", ["deleted_at"], False),
    ("IDX_payment_payment_collection_id", ["payment_collection_id"], False),
    ("IDX_payment_payment_session_id", ["payment_session_id"], False),
    ("IDX_payment_payment_session_id_unique", ["payment_session_id"], True),
    ("IDX_payment_provider_id", ["provider_id"], False),
)
FOREIGN_KEY = "payment_payment_session_id_foreign"


def _timestamp(name: str, *, nullable: bool = False, default: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        paymod.persistence.types.UTCDateTime(timezone=True),
        server_default=sa.func.now() if default else None,
        nullable=nullable,
    )


def _rebuild_payment(add_foreign_key: bool) -> None:
    """SQLite cannot alter a constraint: the table is rebuilt, its partial indexes made again."""
    for name, _columns, _unique in PAYMENT_INDEXES:
        op.drop_index(name, table_name="payment")
    with op.batch_alter_table("payment", recreate="always") as batch:
        if add_foreign_key:
            batch.create_foreign_key(
                FOREIGN_KEY, "payment_session", ["payment_session_id"], ["id"], onupdate="CASCADE"
            )
        else:
            batch.drop_constraint(FOREIGN_KEY, type_="foreignkey")
    for name, columns, unique in PAYMENT_INDEXES:
        op.create_index(name, "payment", columns, unique=unique, sqlite_where=LIVE, postgresql_where=LIVE)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Payments whose session was deleted get it back, soft-deleted, before the foreign key exists.
    op.execute(
        """
        INSERT INTO payment_session (id, currency_code, amount, provider_id, data, status, authorized_at,
            payment_collection_id, created_at, updated_at, deleted_at)
        SELECT p.payment_session_id, p.currency_code, p.amount, p.provider_id, '{}', 'authorized',
            p.created_at, p.payment_collection_id, p.created_at, p.updated_at, p.updated_at
        FROM payment p
        WHERE NOT EXISTS (SELECT 1 FROM payment_session s WHERE s.id = p.payment_session_id)
          AND p.id = (SELECT MIN(q.id) FROM payment q WHERE q.payment_session_id = p.payment_session_id)
        """
    )
    if sqlite:
        _rebuild_payment(add_foreign_key=True)
    else:
        op.create_foreign_key(
            FOREIGN_KEY, "payment", "payment_session", ["payment_session_id"], ["id"], onupdate="CASCADE"
        )

    op.create_table(
        "process_heartbeat",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        _timestamp("started_at"),
        _timestamp("heartbeat_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("process_heartbeat_pkey")),
    )
    op.create_index("IDX_process_heartbeat_heartbeat_at", "process_heartbeat", ["heartbeat_at"])
    with op.batch_alter_table("idempotency_key") as batch:
        batch.add_column(sa.Column("owner", sa.Text(), nullable=True))
    with op.batch_alter_table("payment_session") as batch:
        batch.add_column(_timestamp("authorizing_until", nullable=True))
        batch.add_column(sa.Column("authorizing_by", sa.Text(), nullable=True))
    with op.batch_alter_table("workflow_run") as batch:
        batch.add_column(sa.Column("owner", sa.Text(), nullable=True))

    op.create_table(
        "ephemeral_key",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("account_holder_id", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        _timestamp("expires_at"),
        _timestamp("created_at", default=True),
        _timestamp("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["account_holder_id"],
            ["account_holder.id"],
            name=op.f("ephemeral_key_account_holder_id_foreign"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("ephemeral_key_pkey")),
    )
    op.create_index("IDX_ephemeral_key_token_hash_unique", "ephemeral_key", ["token_hash"], unique=True)
    op.create_index("IDX_ephemeral_key_expires_at", "ephemeral_key", ["expires_at"])


def downgrade() -> None:
    op.drop_index("IDX_ephemeral_key_expires_at", table_name="ephemeral_key")
    op.drop_index("IDX_ephemeral_key_token_hash_unique", table_name="ephemeral_key")
    op.drop_table("ephemeral_key")
    with op.batch_alter_table("workflow_run") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("payment_session") as batch:
        batch.drop_column("authorizing_by")
        batch.drop_column("authorizing_until")
    with op.batch_alter_table("idempotency_key") as batch:
        batch.drop_column("owner")
    op.drop_index("IDX_process_heartbeat_heartbeat_at", table_name="process_heartbeat")
    op.drop_table("process_heartbeat")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_payment(add_foreign_key=False)
    else:
        op.drop_constraint(FOREIGN_KEY, "payment", type_="foreignkey")
