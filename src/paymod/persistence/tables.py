"""The schema (reference section 1), as SQLAlchemy Core tables. Alembic migrations create it."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
    true,
)

from paymod.domain.statuses import PaymentCollectionStatus, PaymentSessionStatus
from paymod.persistence.types import Amount, JSONDocument, UTCDateTime

metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "fk": "%(table_name)s_%(column_0_name)s_foreign",
        "ck": "%(table_name)s_%(constraint_name)s_check",
        "uq": "%(table_name)s_%(column_0_N_name)s_unique",
        "ix": "IDX_%(table_name)s_%(column_0_N_name)s",
    }
)

LIVE = text("deleted_at IS NULL")


def _timestamps() -> list[Column[object]]:
    return [
        Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
        Column("updated_at", UTCDateTime(), nullable=False, server_default=func.now()),
        Column("deleted_at", UTCDateTime(), nullable=True),
    ]


def _live_index(table: str, *columns: str, unique: bool = False, name: str | None = None) -> Index:
    return Index(
        name or f"IDX_{table}_{'_'.join(columns)}" + ("_unique" if unique else ""),
        *columns,
        unique=unique,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )


def _in(values: type[PaymentCollectionStatus] | type[PaymentSessionStatus]) -> str:
    return "status IN (" + ", ".join(f"'{v.value}'" for v in values) + ")"


payment_collection = Table(
    "payment_collection",
    metadata,
    Column("id", Text, primary_key=True),
    Column("currency_code", Text, nullable=False),
    Column("amount", Amount(), nullable=False),
    Column("authorized_amount", Amount(), nullable=True),
    Column("captured_amount", Amount(), nullable=True),
    Column("refunded_amount", Amount(), nullable=True),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("status", Text, nullable=False, server_default=PaymentCollectionStatus.NOT_PAID.value),
    Column("metadata", JSONDocument, nullable=True),
    *_timestamps(),
    CheckConstraint(_in(PaymentCollectionStatus), name="status"),
    _live_index("payment_collection", "deleted_at"),
)

payment_provider = Table(
    "payment_provider",
    metadata,
    Column("id", Text, primary_key=True),
    Column("is_enabled", Boolean, nullable=False, server_default=true()),
    *_timestamps(),
    _live_index("payment_provider", "deleted_at"),
)

payment_collection_payment_providers = Table(
    "payment_collection_payment_providers",
    metadata,
    Column(
        "payment_collection_id",
        Text,
        ForeignKey("payment_collection.id", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
    ),
    Column(
        "payment_provider_id",
        Text,
        ForeignKey("payment_provider.id", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
    ),
    PrimaryKeyConstraint("payment_collection_id", "payment_provider_id"),
)

payment_session = Table(
    "payment_session",
    metadata,
    Column("id", Text, primary_key=True),
    Column("currency_code", Text, nullable=False),
    Column("amount", Amount(), nullable=False),
    Column("provider_id", Text, nullable=False),
    Column("data", JSONDocument, nullable=False, server_default=text("'{}'")),
    Column("context", JSONDocument, nullable=True),
    Column("status", Text, nullable=False, server_default=PaymentSessionStatus.PENDING.value),
    Column("authorized_at", UTCDateTime(), nullable=True),
    Column(
        "payment_collection_id",
        Text,
        ForeignKey("payment_collection.id", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
    ),
    Column("metadata", JSONDocument, nullable=True),
    *_timestamps(),
    CheckConstraint(_in(PaymentSessionStatus), name="status"),
    _live_index("payment_session", "payment_collection_id"),
    _live_index("payment_session", "deleted_at"),
)

payment = Table(
    "payment",
    metadata,
    Column("id", Text, primary_key=True),
    Column("amount", Amount(), nullable=False),
    Column("currency_code", Text, nullable=False),
    Column("provider_id", Text, nullable=False),
    Column("data", JSONDocument, nullable=True),
    Column("metadata", JSONDocument, nullable=True),
    Column("captured_at", UTCDateTime(), nullable=True),
    Column("canceled_at", UTCDateTime(), nullable=True),
    Column(
        "payment_collection_id",
        Text,
        ForeignKey("payment_collection.id", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
    ),
    Column("payment_session_id", Text, nullable=False),
    *_timestamps(),
    _live_index("payment", "provider_id", name="IDX_payment_provider_id"),
    _live_index("payment", "payment_collection_id"),
    _live_index("payment", "payment_session_id"),
    _live_index("payment", "payment_session_id", unique=True),
    _live_index("payment", "deleted_at"),
)

capture = Table(
    "capture",
    metadata,
    Column("id", Text, primary_key=True),
    Column("amount", Amount(), nullable=False),
    Column(
        "payment_id", Text, ForeignKey("payment.id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    ),
    Column("metadata", JSONDocument, nullable=True),
    Column("created_by", Text, nullable=True),
    *_timestamps(),
    _live_index("capture", "payment_id"),
    _live_index("capture", "deleted_at"),
)

refund_reason = Table(
    "refund_reason",
    metadata,
    Column("id", Text, primary_key=True),
    Column("label", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("metadata", JSONDocument, nullable=True),
    *_timestamps(),
    _live_index("refund_reason", "deleted_at"),
)

refund = Table(
    "refund",
    metadata,
    Column("id", Text, primary_key=True),
    Column("amount", Amount(), nullable=False),
    Column(
        "payment_id", Text, ForeignKey("payment.id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    ),
    Column(
        "refund_reason_id",
        Text,
        ForeignKey("refund_reason.id", ondelete="SET NULL", onupdate="CASCADE"),
        nullable=True,
    ),
    Column("note", Text, nullable=True),
    Column("created_by", Text, nullable=True),
    Column("metadata", JSONDocument, nullable=True),
    *_timestamps(),
    _live_index("refund", "payment_id"),
    _live_index("refund", "refund_reason_id"),
    _live_index("refund", "deleted_at"),
)

account_holder = Table(
    "account_holder",
    metadata,
    Column("id", Text, primary_key=True),
    Column("provider_id", Text, nullable=False),
    Column("external_id", Text, nullable=False),
    Column("email", Text, nullable=True),
    # The customer (of the merchant's backend) this holder belongs to: Medusa's customer link.
    Column("customer_id", Text, nullable=True),
    Column("data", JSONDocument, nullable=False, server_default=text("'{}'")),
    Column("metadata", JSONDocument, nullable=True),
    *_timestamps(),
    _live_index("account_holder", "provider_id", "external_id", unique=True),
    _live_index("account_holder", "provider_id", "customer_id", unique=True),
    _live_index("account_holder", "deleted_at"),
)

region_payment_provider = Table(
    "region_payment_provider",
    metadata,
    Column("region_id", Text, nullable=False),
    Column("payment_provider_id", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("region_id", "payment_provider_id"),
    Index("IDX_region_payment_provider_payment_provider_id", "payment_provider_id"),
)

__all__ = [
    "account_holder",
    "capture",
    "metadata",
    "payment",
    "payment_collection",
    "payment_collection_payment_providers",
    "payment_provider",
    "payment_session",
    "refund",
    "refund_reason",
    "region_payment_provider",
]
