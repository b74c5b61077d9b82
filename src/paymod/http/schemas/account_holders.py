"""Account holders, their saved payment methods, and ephemeral keys for a shopper's access."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from paymod.http.schemas.base import Body, Id, JsonObject, ListDocument, Timestamped
from paymod.services.dto import PaymentMethodDTO


class Customer(BaseModel):
    """The merchant's customer the holder belongs to (its id keys the provider's record)."""

    model_config = ConfigDict(extra="allow")

    id: Id
    email: str | None = Field(default=None, max_length=1000)


class CreateAccountHolder(Body):
    provider_id: Id
    customer: Customer
    metadata: JsonObject | None = None


class SavePaymentMethod(Body):
    """Saves a payment method at the provider (Stripe: a SetupIntent for the customer)."""

    data: JsonObject = Field(default_factory=dict)


class StoreSavePaymentMethod(SavePaymentMethod):
    customer_id: Id | None = Field(
        default=None,
        description="only when the server trusts it (`[store] trust_customer_id`): the customer the account "
        "holder belongs to. Otherwise the request carries an ephemeral key for the holder.",
    )


class CreateEphemeralKey(Body):
    expires_in: int | None = Field(
        default=None, ge=60, le=86_400, description="seconds the key lives (default 3600, at most 86400)"
    )


class EphemeralKey(BaseModel):
    id: str
    object: Literal["ephemeral_key"] = "ephemeral_key"
    account_holder_id: str
    #: shown once: only this response carries it
    secret: str
    expires_at: datetime


class EphemeralKeyResponse(BaseModel):
    ephemeral_key: EphemeralKey


class UpdateAccountHolder(Body):
    customer: Customer | None = None
    metadata: JsonObject | None = None


class AccountHolder(Timestamped):
    id: str
    provider_id: str | None = None
    external_id: str | None = None
    email: str | None = None
    customer_id: str | None = None
    data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class AccountHolderResponse(BaseModel):
    account_holder: AccountHolder


class AccountHolderList(ListDocument):
    account_holders: list[AccountHolder]


class PaymentMethod(PaymentMethodDTO):
    # The module's result as it is: every field is always there (`?fields=` does not apply).
    pass


class PaymentMethodList(ListDocument):
    payment_methods: list[PaymentMethod]


class PaymentMethodResponse(BaseModel):
    payment_method: PaymentMethod


__all__ = [
    "AccountHolder",
    "AccountHolderList",
    "AccountHolderResponse",
    "CreateAccountHolder",
    "CreateEphemeralKey",
    "Customer",
    "EphemeralKey",
    "EphemeralKeyResponse",
    "PaymentMethod",
    "PaymentMethodList",
    "PaymentMethodResponse",
    "SavePaymentMethod",
    "StoreSavePaymentMethod",
    "UpdateAccountHolder",
]
