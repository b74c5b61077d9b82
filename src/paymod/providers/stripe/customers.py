"""Account holders (Stripe customers) and their saved payment methods (SetupIntents, detaching)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, cast

import stripe

from paymod.domain.errors import ProviderError
from paymod.providers.base import (
    AccountHolderInput,
    AccountHolderOutput,
    PaymentMethodInput,
    PaymentMethodOutput,
    ProviderOutput,
)
from paymod.providers.stripe.client import Data, StripeCalls, _customer_id, _dump, _setting_key


def _customer_params(customer: Mapping[str, Any]) -> Data:
    """Stripe customer fields from paymod's customer (Medusa's PaymentCustomerDTO)."""
    name = customer.get("company_name") or " ".join(
        str(part) for part in (customer.get("first_name"), customer.get("last_name")) if part
    )
    params: Data = {}
    for key, value in (("email", customer.get("email")), ("name", name), ("phone", customer.get("phone"))):
        if value:
            params[key] = value
    billing = customer.get("billing_address") or {}
    address = {
        key: billing.get(source)
        for key, source in (
            ("city", "city"),
            ("country", "country_code"),
            ("line1", "address_1"),
            ("line2", "address_2"),
            ("postal_code", "postal_code"),
            ("state", "province"),
        )
        if billing.get(source)
    }
    if address:
        params["address"] = address
    return params


class StripeCustomers(StripeCalls):
    """The account holder and saved payment method methods of `StripeProvider`."""

    # -- account holders (Stripe customers) -----------------------------------------------
    async def create_account_holder(self, input: AccountHolderInput) -> AccountHolderOutput:
        context = input.context
        existing = _customer_id(context)
        if existing:
            return AccountHolderOutput(
                id=existing, data=dict((context.account_holder or {}).get("data") or {})
            )
        customer = context.customer
        if not customer:
            raise ProviderError("No customer in context", code="invalid_data")
        params = _customer_params(customer)
        if customer.get("id"):
            params["metadata"] = {"customer_id": str(customer["id"])}
        options = self._options(context.idempotency_key, self._account(input.data, context))
        created = await self._request(
            lambda: self.client.v1.customers.create_async(
                cast("stripe.params.CustomerCreateParams", params), options
            )
        )
        data = _dump(created)
        return AccountHolderOutput(id=str(data["id"]), data=data)

    async def retrieve_account_holder(self, input: AccountHolderInput) -> AccountHolderOutput:
        customer_id = _customer_id(input.context)
        if not customer_id:
            raise ProviderError("No account holder in context", code="invalid_data")
        options = self._options(None, self._account(input.data, input.context))
        data = _dump(
            await self._request(lambda: self.client.v1.customers.retrieve_async(customer_id, None, options))
        )
        return AccountHolderOutput(id=str(data["id"]), data=data)

    async def update_account_holder(self, input: AccountHolderInput) -> ProviderOutput:
        context = input.context
        customer_id = _customer_id(context)
        if not customer_id:
            raise ProviderError("No account holder in context", code="invalid_data")
        if not context.customer:
            return ProviderOutput()
        params = _customer_params(context.customer)
        options = self._options(_setting_key(context.idempotency_key), self._account(input.data, context))
        updated = await self._request(
            lambda: self.client.v1.customers.update_async(
                customer_id, cast("stripe.params.CustomerUpdateParams", params), options
            )
        )
        return ProviderOutput(data=_dump(updated))

    async def delete_account_holder(self, input: AccountHolderInput) -> ProviderOutput:
        customer_id = _customer_id(input.context)
        if not customer_id:
            return ProviderOutput(data={})
        options = self._options(None, self._account(input.data, input.context))

        async def gone(exc: stripe.StripeError) -> Data | None:
            return {} if exc.http_status == 404 else None  # deleted already: nothing left to do

        async def delete() -> Data:
            return _dump(await self.client.v1.customers.delete_async(customer_id, None, options))

        return ProviderOutput(data=await self._request(delete, gone))

    # -- saved payment methods ------------------------------------------------------------
    async def list_payment_methods(self, input: PaymentMethodInput) -> list[PaymentMethodOutput]:
        """Every saved method of the account holder's customer, all pages of Stripe's list."""
        customer_id = _customer_id(input.context)
        if not customer_id:
            return []
        options = self._options(None, self._account(input.data, input.context))

        def customer_page(params: Data) -> Awaitable[Any]:
            return self.client.v1.customers.payment_methods.list_async(
                customer_id, cast("stripe.params.CustomerPaymentMethodListParams", params), options
            )

        def card_page(params: Data) -> Awaitable[Any]:
            return self.client.v1.payment_methods.list_async(
                cast(
                    "stripe.params.PaymentMethodListParams",
                    {**params, "customer": customer_id, "type": "card"},
                ),
                options,
            )

        try:
            methods = await self._list_all(customer_page)
        except ProviderError as exc:
            # Stripe-compatible servers without the customer-scoped list (localstripe) answer a bare,
            # non-JSON 404 (no error object); Stripe itself always answers JSON. Fall back to the card list.
            cause = exc.__cause__
            if not (isinstance(cause, stripe.APIError) and cause.http_status == 404 and cause.error is None):
                raise
            methods = await self._list_all(card_page)
        return [PaymentMethodOutput(id=str(method["id"]), data=method) for method in methods]

    async def save_payment_method(self, input: PaymentMethodInput) -> PaymentMethodOutput:
        customer_id = _customer_id(input.context)
        if not customer_id:
            raise ProviderError("No account holder in context", code="invalid_data")
        account = self._account(input.data, input.context)
        params: Data = {
            "customer": customer_id,
            **{k: v for k, v in input.data.items() if k != "stripe_account"},
        }
        options = self._options(input.context.idempotency_key, account)
        created = await self._request(
            lambda: self.client.v1.setup_intents.create_async(
                cast("stripe.params.SetupIntentCreateParams", params), options
            )
        )
        data = _dump(created)
        return PaymentMethodOutput(id=str(data["id"]), data=data)

    async def delete_payment_method(self, input: PaymentMethodInput) -> ProviderOutput:
        method_id = input.data.get("id")
        if not isinstance(method_id, str) or not method_id:
            raise ProviderError("No payment method ID provided", code="invalid_data")
        options = self._options(
            input.context.idempotency_key or f"{method_id}:detach", self._account(input.data, input.context)
        )
        detached = await self._request(
            lambda: self.client.v1.payment_methods.detach_async(method_id, None, options)
        )
        return ProviderOutput(data=_dump(detached))
