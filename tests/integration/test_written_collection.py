"""A session's creation and an authorization hand back the collection their transaction wrote, when
it wrote all of it (the HTTP routes answer with it instead of reading it again): it must be the
collection a read right after returns, and absent whenever the transaction did not see all of it."""

from __future__ import annotations

from typing import Any

import pytest

from paymod import PaymentModule
from paymod.domain.errors import NotFoundError
from paymod.services.dto import PaymentCollectionDTO
from paymod.workflows.payment_collection import (
    COLLECTION_RELATIONS,
    authorize_payment_collection,
    create_payment_sessions,
)

TESTING = "pp_testing_default"
SYSTEM = "pp_system_default"


def _dump(collection: PaymentCollectionDTO) -> dict[str, Any]:
    return collection.model_dump()


async def _read(module: PaymentModule, collection_id: str) -> PaymentCollectionDTO:
    return await module.retrieve_payment_collection(collection_id, {"relations": COLLECTION_RELATIONS})


async def test_a_checkout_hands_back_the_collection_a_read_returns(module: PaymentModule) -> None:
    [collection] = await module.create_payment_collections([{"currency_code": "usd", "amount": "19.99"}])
    first = await create_payment_sessions(module, collection.id, provider_id=TESTING)
    second = await create_payment_sessions(module, collection.id, provider_id=SYSTEM)  # replaces the first

    assert first.payment_collection is not None and second.payment_collection is not None
    written = second.payment_collection
    assert [s.id for s in written.payment_sessions or []] == [second.id]
    assert _dump(written) == _dump(await _read(module, collection.id))

    payment = await module.authorize_payment_session(second.id)
    assert payment is not None and payment.payment_collection is not None
    assert payment.payment_collection.status == "authorized"
    assert _dump(payment.payment_collection) == _dump(await _read(module, collection.id))

    # The checkout's answer is that collection; authorizing again returns the payment as stored.
    again = await authorize_payment_collection(module, collection.id, session_id=second.id)
    assert again.payment is not None and again.payment.id == payment.id
    assert _dump(again.payment_collection) == _dump(await _read(module, collection.id))


async def test_a_collection_the_transaction_did_not_see_whole_is_not_handed_back(
    module: PaymentModule,
) -> None:
    [collection] = await module.create_payment_collections([{"currency_code": "usd", "amount": 100}])
    one = await module.create_payment_session(
        collection.id, {"provider_id": TESTING, "amount": 40, "currency_code": "usd", "data": {}}
    )
    assert one.payment_collection is not None
    # A second session beside the first (split payment): the other session's row was not written here.
    two = await module.create_payment_session(
        collection.id, {"provider_id": TESTING, "amount": 60, "currency_code": "usd", "data": {}}
    )
    assert two.payment_collection is None
    payment = await module.authorize_payment_session(two.id)
    assert payment is not None and payment.payment_collection is None

    # A canceled payment stays on the collection: a new checkout did not write it.
    await module.cancel_payment(payment.id)
    replacing = await create_payment_sessions(module, collection.id, provider_id=TESTING)
    assert replacing.payment_collection is None
    read = await _read(module, collection.id)
    assert [p.id for p in read.payments or []] == [payment.id]


async def test_authorizing_a_session_that_is_gone_is_not_found(module: PaymentModule) -> None:
    [collection] = await module.create_payment_collections([{"currency_code": "usd", "amount": 10}])
    session = await create_payment_sessions(module, collection.id, provider_id=TESTING)
    await create_payment_sessions(module, collection.id, provider_id=SYSTEM)  # soft-deletes `session`
    for missing in (session.id, "payses_unknown"):
        with pytest.raises(NotFoundError, match=f"^PaymentSession with id: {missing} was not found$"):
            await module.authorize_payment_session(missing)
