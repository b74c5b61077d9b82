"""Reference 9.1: Medusa's `integration-tests/__tests__/loaders/providers.spec.ts`, ported to paymod.

Medusa's suite A configures Medusa Cloud payments; paymod has no cloud provider, so suite A runs with
the testing provider configured (the `module` fixture) and suite B with no provider configured.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from paymod import InvalidDataError, PaymentModule


# -- suite A: "Payment Module Service" > "providers" ------------------------------------------
async def test_should_load_the_system_and_configured_payment_providers_by_default(
    module: PaymentModule,
) -> None:
    """9.1-1: should load the system and medusa payments providers by default.

    Adapted: paymod has no Medusa Cloud provider. With the testing provider configured, the list is
    `pp_system_default` and `pp_testing_default`, both enabled.
    """
    providers = await module.list_payment_providers()

    assert len(providers) == 2
    assert sorted(p.id for p in providers) == ["pp_system_default", "pp_testing_default"]
    assert all(p.is_enabled for p in providers)


async def test_should_create_a_payment_session_successfully(module: PaymentModule) -> None:
    """9.1-2: should create a payment session successfully (system provider, 200 "USD", data {})."""
    collection = await module.create_payment_collections({"currency_code": "USD", "amount": 200})

    session = await module.create_payment_session(
        collection.id,
        {"provider_id": "pp_system_default", "amount": 200, "currency_code": "USD", "data": {}},
    )

    assert session.payment_collection_id == collection.id
    assert session.provider_id == "pp_system_default"
    assert session.amount == Decimal(200)
    assert session.currency_code == "usd"
    assert session.status == "pending"
    stored = await module.list_payment_sessions({"payment_collection_id": collection.id})
    assert [s.id for s in stored] == [session.id]


async def test_should_load_payment_plugins_and_refuse_a_collection_without_currency(
    module: PaymentModule,
) -> None:
    """9.1-3: should load payment plugins (a collection without currency_code is refused)."""
    with pytest.raises(
        InvalidDataError,
        match=re.escape("Value for PaymentCollection.currency_code is required, 'undefined' found"),
    ) as caught:
        await module.create_payment_collections([{"amount": 200}])

    assert caught.value.type == "invalid_data"
    assert await module.list_payment_collections() == []


async def test_should_create_a_payment_collection_successfully(module: PaymentModule) -> None:
    """9.1-4: should create a payment collection successfully (a list in, a list out)."""
    created = await module.create_payment_collections([{"currency_code": "USD", "amount": 200}])

    assert isinstance(created, list)
    assert len(created) == 1
    collection = created[0]
    assert collection.id.startswith("pay_col_")
    assert collection.status == "not_paid"
    assert collection.payment_providers == []
    assert collection.payment_sessions == []
    assert collection.payments == []
    assert collection.currency_code == "usd"
    assert collection.amount == Decimal(200)


# -- suite B: "providers" (no options) ------------------------------------------------------
async def test_should_load_only_the_system_provider_when_no_provider_is_configured(
    database_url: str,
) -> None:
    """9.1-5: should not load the medusa payments provider if the cloud options are not provided.

    Adapted: paymod has no cloud provider; with no providers configured, exactly
    `pp_system_default` is registered.
    """
    async with await PaymentModule.connect(database_url, migrate=False) as module:
        providers = await module.list_payment_providers()

        assert [p.id for p in providers] == ["pp_system_default"]
        assert providers[0].is_enabled is True
        assert module.providers.ids == ["pp_system_default"]
