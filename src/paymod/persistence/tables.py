"""The schema (reference section 1), as SQLAlchemy Core tables. Alembic migrations create it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
    true,
)

from paymod.domain.statuses import (
    DisputeStatus,
    PaymentCollectionStatus,
    PaymentSessionStatus,
    PaymentStatus,
)
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
_OPEN_AUTHORIZATION = text(
    "deleted_at IS NULL AND captured_at IS NULL AND canceled_at IS NULL"
    " AND authorization_expires_at IS NOT NULL"
)


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


def _in(values: type[PaymentCollectionStatus] | type[PaymentSessionStatus] | type[PaymentStatus]) -> str:
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
    # paymod's own: an authorization in flight claims its session (until then, or until its process,
    # a `process_heartbeat` row, stops beating), so the collection's sessions are not replaced, nor
    # its amount changed, while the provider is being asked.
    Column("authorizing_until", UTCDateTime(), nullable=True),
    Column("authorizing_by", Text, nullable=True),
    *_timestamps(),
    # paymod's own: the janitor (provider sync) asks the provider about a session left unsettled, with
    # backoff: when it last asked, how often, and not before when again.
    Column("provider_checked_at", UTCDateTime(), nullable=True),
    Column("provider_check_attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_provider_check_at", UTCDateTime(), nullable=True),
    CheckConstraint(_in(PaymentSessionStatus), name="status"),
    _live_index("payment_session", "payment_collection_id"),
    _live_index("payment_session", "deleted_at"),
    # The janitor's scan: unsettled sessions by status and age.
    Index(
        "IDX_payment_session_unsettled",
        "status",
        "created_at",
        postgresql_where=text("deleted_at IS NULL AND authorized_at IS NULL"),
        sqlite_where=text("deleted_at IS NULL AND authorized_at IS NULL"),
    ),
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
    # paymod's own: what the provider released uncaptured when it closed the authorization (Stripe after
    # a partial capture without multicapture); the payment is then canceled for the rest.
    Column("released_amount", Amount(), nullable=True),
    # paymod's own: when the provider stops letting this authorization be captured, when paymod warned
    # about it (`payment.authorization_expiring`) and when it marked it expired.
    Column("authorization_expires_at", UTCDateTime(), nullable=True),
    Column("expiring_notified_at", UTCDateTime(), nullable=True),
    Column("expired_at", UTCDateTime(), nullable=True),
    # paymod's own: derived from the columns above and the live captures and refunds
    # (`domain.rules.payment_status`), kept by every write that changes them, so it can be filtered on.
    Column("status", Text, nullable=False),
    Column(
        "payment_collection_id",
        Text,
        ForeignKey("payment_collection.id", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
    ),
    # A session that was authorized is only ever soft-deleted: the database refuses to drop one a payment
    # points at.
    Column(
        "payment_session_id",
        Text,
        ForeignKey("payment_session.id", onupdate="CASCADE"),
        nullable=False,
    ),
    *_timestamps(),
    _live_index("payment", "payment_collection_id"),
    _live_index("payment", "payment_session_id"),
    _live_index("payment", "payment_session_id", unique=True),
    _live_index("payment", "deleted_at"),
    # The dashboard's payment list pages through these orders (keyset: the last row's value and id).
    _live_index("payment", "created_at", "id"),
    _live_index("payment", "amount", "id"),
    # ... and, filtered by a status or a provider, newest first.
    _live_index("payment", "status", "created_at", "id"),
    # The expiry job's scan: open authorizations by deadline (captured or canceled ones drop out).
    Index(
        "IDX_payment_open_authorization_expires_at",
        "authorization_expires_at",
        postgresql_where=_OPEN_AUTHORIZATION,
        sqlite_where=_OPEN_AUTHORIZATION,
    ),
    _live_index("payment", "provider_id", "created_at", "id"),
    CheckConstraint(_in(PaymentStatus), name="status"),
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
    # The provider's id of the refund (paymod's own): a refund reported by the provider is booked once.
    Column("provider_refund_id", Text, nullable=True),
    *_timestamps(),
    _live_index("refund", "provider_refund_id", unique=True),
    _live_index("refund", "payment_id"),
    _live_index("refund", "refund_reason_id"),
    _live_index("refund", "deleted_at"),
)

# A dispute (chargeback) of a payment, as its provider reported it (paymod's own). Amount and status
# change with the provider's later reports; the row is never deleted.
dispute = Table(
    "dispute",
    metadata,
    Column("id", Text, primary_key=True),
    Column(
        "payment_id", Text, ForeignKey("payment.id", ondelete="CASCADE", onupdate="CASCADE"), nullable=False
    ),
    Column("provider_id", Text, nullable=False),
    Column("provider_dispute_id", Text, nullable=False),
    Column("amount", Amount(), nullable=False),
    Column("currency_code", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Column("status", Text, nullable=False),
    Column("evidence_due_by", UTCDateTime(), nullable=True),
    Column("funds_withdrawn", Boolean, nullable=True),
    Column("funds_reinstated", Boolean, nullable=True),
    # The provider's dispute object as last reported.
    Column("data", JSONDocument, nullable=True),
    Column("evidence_submitted_at", UTCDateTime(), nullable=True),
    Column("accepted_at", UTCDateTime(), nullable=True),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column("updated_at", UTCDateTime(), nullable=False, server_default=func.now()),
    CheckConstraint(
        "status IN (" + ", ".join(f"'{v.value}'" for v in DisputeStatus) + ")",
        name="status",
    ),
    Index("IDX_dispute_provider_dispute_id_unique", "provider_dispute_id", unique=True),
    Index("IDX_dispute_payment_id", "payment_id"),
    Index("IDX_dispute_status", "status"),
    Index("IDX_dispute_created_at", "created_at"),
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

# -- HTTP service: API keys and Idempotency-Key records (paymod's own tables) ------------------

api_key = Table(
    "api_key",
    metadata,
    Column("id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("title", Text, nullable=True),
    # sha256 of the key: keys are high-entropy random strings, so a slow hash adds nothing.
    Column("token_hash", Text, nullable=False),
    Column("redacted", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column("revoked_at", UTCDateTime(), nullable=True),
    CheckConstraint("type IN ('secret', 'publishable')", name="type"),
    Index("IDX_api_key_token_hash_unique", "token_hash", unique=True),
)

idempotency_key = Table(
    "idempotency_key",
    metadata,
    # sha256 of the API key the request presented: keys are scoped per API key.
    Column("scope", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("path", Text, nullable=False),
    # sha256 of the request's parameters (canonical JSON body and query string).
    Column("fingerprint", Text, nullable=False),
    # NULL while the first request is still running.
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    # The claim of the request running now: it lapses at `locked_until`, or as soon as the process
    # that holds it (`owner`, a `process_heartbeat` row) stops beating.
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("owner", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column("completed_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("scope", "key"),
    Index("IDX_idempotency_key_created_at", "created_at"),
)

# -- Webhooks and events: the inbound inbox and the outbound outbox (paymod's own tables) ------------

webhook_event = Table(
    "webhook_event",
    metadata,
    Column("id", Text, primary_key=True),
    Column("provider_id", Text, nullable=False),
    # The provider's event id, or a digest of the raw body when the provider has none: the dedupe key.
    Column("event_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("session_id", Text, nullable=True),
    Column("amount", Amount(), nullable=True),
    # What the provider says stays capturable (0: it closed the authorization), when it says.
    Column("remaining_capturable", Amount(), nullable=True),
    # The refunds a `refunded` / `refund_failed` event is about: [{id, amount, paymod_refund_id, ...}].
    Column("refunds", JSONDocument, nullable=True),
    # The dispute a `disputed` event is about: {id, amount, currency_code, status, ...}.
    Column("dispute", JSONDocument, nullable=True),
    # The verified raw body and headers, kept for audit and replay.
    Column("payload", JSONDocument, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("available_at", UTCDateTime(), nullable=False),
    # A worker's claim; after it passes, another worker may take the event over.
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("processed_at", UTCDateTime(), nullable=True),
    # The request that stored it (`X-Request-Id`): the events its processing writes carry it on.
    Column("request_id", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column("updated_at", UTCDateTime(), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('pending', 'processed', 'ignored', 'failed')", name="status"),
    Index("IDX_webhook_event_provider_id_event_id_unique", "provider_id", "event_id", unique=True),
    Index("IDX_webhook_event_status_available_at", "status", "available_at"),
    Index("IDX_webhook_event_created_at", "created_at"),
)

PENDING = text("status = 'pending'")

event_outbox = Table(
    "event_outbox",
    metadata,
    # Commit order within a collection: changes to one collection hold its row lock, so they are serial.
    Column("sequence", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("data", JSONDocument, nullable=False),
    Column("payment_collection_id", Text, nullable=True),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("available_at", UTCDateTime(), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("dispatched_at", UTCDateTime(), nullable=True),
    # The request (or stored provider event) whose change this event describes: `request.id` of the
    # event's document.
    Column("request_id", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('pending', 'dispatched', 'failed')", name="status"),
    Index("IDX_event_outbox_id_unique", "id", unique=True),
    # Claims read the pending rows in commit order, and look for a collection's pending predecessors,
    # through these partial indexes: their cost follows the rows claimed, not the backlog.
    Index("IDX_event_outbox_pending_sequence", "sequence", postgresql_where=PENDING, sqlite_where=PENDING),
    Index(
        "IDX_event_outbox_pending_collection",
        "payment_collection_id",
        "sequence",
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    ),
    Index("IDX_event_outbox_created_at", "created_at"),
)

webhook_endpoint = Table(
    "webhook_endpoint",
    metadata,
    Column("id", Text, primary_key=True),
    Column("url", Text, nullable=False),
    # Event names this endpoint receives; ["*"] for all.
    Column("events", JSONDocument, nullable=False),
    # Kept in clear: paymod needs it to sign every delivery (as Stripe keeps endpoint secrets).
    Column("secret", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("description", Text, nullable=True),
    # Its lane: one worker at a time sends its deliveries (in order within a collection).
    Column("lane_locked_until", UTCDateTime(), nullable=True),
    Column("lane_owner", Text, nullable=True),
    # Failing: since when (the current streak), how many deliveries in a row, and when to try again
    # (the endpoint backs off as a whole, so its failures cost one probe per backoff period).
    Column("failing_since", UTCDateTime(), nullable=True),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("retry_at", UTCDateTime(), nullable=True),
    # Disabled by paymod after failing for longer than the worker's `endpoint_disable_after`.
    Column("disabled_at", UTCDateTime(), nullable=True),
    Column("disabled_reason", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column("updated_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column("deleted_at", UTCDateTime(), nullable=True),
)

webhook_delivery = Table(
    "webhook_delivery",
    metadata,
    Column("id", Text, primary_key=True),
    Column("endpoint_id", Text, ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_sequence", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("payment_collection_id", Text, nullable=True),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("available_at", UTCDateTime(), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    Index("IDX_webhook_delivery_endpoint_id_event_id_unique", "endpoint_id", "event_id", unique=True),
    Index(
        "IDX_webhook_delivery_pending_endpoint",
        "endpoint_id",
        "event_sequence",
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    ),
    Index(
        "IDX_webhook_delivery_pending_collection",
        "endpoint_id",
        "payment_collection_id",
        "event_sequence",
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    ),
    Index("IDX_webhook_delivery_created_at", "created_at"),
)

# -- Durable workflows: one row per keyed run, its steps as the journal ---------------------------

workflow_run = Table(
    "workflow_run",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    # sha256 of the run's input: the same key with other input is refused.
    Column("fingerprint", Text, nullable=False),
    Column("input", JSONDocument, nullable=False),
    Column("status", Text, nullable=False),
    # {step: {"status": "started"|"done"|"compensated"|..., "output": ..., "key": ...}}: the journal.
    Column("steps", JSONDocument, nullable=False),
    Column("result", JSONDocument, nullable=True),
    Column("error", JSONDocument, nullable=True),
    # The executing caller's claim; once it passes, or its process (`owner`) stops beating, a retry or
    # the reconciler may resume the run. Writes of a run check `owner`, so a process that lost its
    # claim cannot record anything more.
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("owner", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column("updated_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column("completed_at", UTCDateTime(), nullable=True),
    CheckConstraint("status IN ('running', 'suspended', 'succeeded', 'failed')", name="status"),
    Index("IDX_workflow_run_name_idempotency_key_unique", "name", "idempotency_key", unique=True),
    Index("IDX_workflow_run_status_updated_at", "status", "updated_at"),
    Index("IDX_workflow_run_completed_at", "completed_at"),
)

# -- Processes: who holds a claim, and whether it is still alive ------------------------------------

process_heartbeat = Table(
    "process_heartbeat",
    metadata,
    Column("id", Text, primary_key=True),
    # serve, worker, cli or library: what the process is, for operators.
    Column("kind", Text, nullable=False),
    Column("hostname", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    # Renewed every few seconds; a claim whose owner stopped beating is free to take over.
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    Index("IDX_process_heartbeat_heartbeat_at", "heartbeat_at"),
)

# -- Ephemeral keys: a shopper's short-lived access to one account holder's saved methods ------------

ephemeral_key = Table(
    "ephemeral_key",
    metadata,
    Column("id", Text, primary_key=True),
    Column(
        "account_holder_id",
        Text,
        ForeignKey("account_holder.id", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
    ),
    # sha256 of the key, as for API keys.
    Column("token_hash", Text, nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index("IDX_ephemeral_key_token_hash_unique", "token_hash", unique=True),
    Index("IDX_ephemeral_key_expires_at", "expires_at"),
)

# -- The dashboard: operators' signed-in sessions (paymod.http.dashboard) ---------------------------

dashboard_session = Table(
    "dashboard_session",
    metadata,
    Column("id", Text, primary_key=True),
    # sha256 of the cookie's random token: a database read gives no session away.
    Column("token_hash", Text, nullable=False),
    # The secret API key signed in with (`env:<hash prefix>` for PAYMOD_ADMIN_API_KEY): revoking it ends
    # the session.
    Column("api_key_id", Text, nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("IDX_dashboard_session_token_hash_unique", "token_hash", unique=True),
    Index("IDX_dashboard_session_api_key_id", "api_key_id"),
    Index("IDX_dashboard_session_expires_at", "expires_at"),
)


__all__ = [
    "account_holder",
    "api_key",
    "capture",
    "dashboard_session",
    "dispute",
    "ephemeral_key",
    "event_outbox",
    "idempotency_key",
    "metadata",
    "payment",
    "payment_collection",
    "payment_collection_payment_providers",
    "payment_provider",
    "payment_session",
    "process_heartbeat",
    "refund",
    "refund_reason",
    "region_payment_provider",
    "webhook_delivery",
    "webhook_endpoint",
    "webhook_event",
    "workflow_run",
]
