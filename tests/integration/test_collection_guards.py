"""The collection's guards through `PaymentModule`, on SQLite and PostgreSQL (docs/concepts.md,
"The collection's invariants"): split payments fit and more does not, an authorization in flight
holds the collection, a payment the collection refuses is canceled at the provider, sessions are
soft-deleted and a payment's session is a foreign key, claims of dead processes are free."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from paymod import PaymentModule
from paymod.domain.errors import ConflictError, NotAllowedError
from paymod.persistence.repository import utc_now
from paymod.providers.base import AuthorizePaymentOutput, ProviderInput
from paymod.providers.testing import TestingPaymentProvider
from paymod.services.dto import PaymentSessionDTO
from paymod.workflows.payment_collection import create_payment_sessions

D = Decimal
TESTING = "pp_testing_default"
GATED = "pp_gated_default"


class GatedProvider(TestingPaymentProvider):
    """Authorizes only once the test opens its gate, so a test can act while an authorization runs."""

    identifier = "gated"
    gate: asyncio.Event
    entered: asyncio.Event

    async def authorize_payment(self, input: ProviderInput) -> AuthorizePaymentOutput:
        self.entered.set()
        await self.gate.wait()
        return await super().authorize_payment(input)


@pytest.fixture
async def gated(database_url: str) -> AsyncIterator[tuple[PaymentModule, GatedProvider]]:
    providers = [{"resolve": GatedProvider, "id": "default"}]
    async with await PaymentModule.connect(database_url, providers=providers, migrate=False) as module:
        provider = module.provider(GATED)
        assert isinstance(provider, GatedProvider)
        provider.gate, provider.entered = asyncio.Event(), asyncio.Event()
        yield module, provider


async def session(
    module: PaymentModule, collection_id: str, amount: str | int, provider: str = TESTING
) -> PaymentSessionDTO:
    return await module.create_payment_session(
        collection_id, {"provider_id": provider, "amount": amount, "currency_code": "usd", "data": {}}
    )


async def test_split_payments_fit_and_a_payment_past_the_amount_is_refused_before_the_provider(
    module: PaymentModule, testing_provider: TestingPaymentProvider
) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
    halves = [await session(module, collection.id, 5) for _ in range(2)]
    extra = await session(module, collection.id, "0.01")

    for half in halves:
        assert await module.authorize_payment_session(half.id) is not None
    with pytest.raises(NotAllowedError, match=r"already hold 10\.00 of its 10\.00 USD"):
        await module.authorize_payment_session(extra.id)

    assert testing_provider.count("authorize_payment") == 2  # the refused one never reached it
    stored = await module.retrieve_payment_collection(collection.id)
    assert (stored.status, stored.authorized_amount) == ("authorized", D(10))


async def test_two_full_sessions_authorized_at_once_make_one_payment(module: PaymentModule) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
    sessions = [await session(module, collection.id, 10) for _ in range(2)]

    results = await asyncio.gather(
        *(module.authorize_payment_session(s.id) for s in sessions), return_exceptions=True
    )

    assert sorted(type(r).__name__ for r in results) == ["NotAllowedError", "PaymentDTO"], results
    assert len(await module.list_payments({"payment_collection_id": collection.id})) == 1


async def test_an_authorization_in_flight_holds_the_collection(
    gated: tuple[PaymentModule, GatedProvider],
) -> None:
    module, provider = gated
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
    first = await session(module, collection.id, 10, GATED)
    other = await session(module, collection.id, 10, GATED)

    running = asyncio.create_task(module.authorize_payment_session(first.id))
    await provider.entered.wait()

    with pytest.raises(ConflictError, match="is being authorized"):
        await create_payment_sessions(module, collection.id, provider_id=GATED)
    with pytest.raises(ConflictError, match="is being authorized"):
        await module.delete_payment_session(first.id)
    with pytest.raises(ConflictError, match="is being authorized"):
        await module.update_payment_collections(collection.id, {"amount": 20})
    with pytest.raises(ConflictError, match="is being authorized"):
        await module.soft_delete_payment_collections(collection.id)
    # the authorization in flight counts: a second full payment does not fit
    with pytest.raises(NotAllowedError, match="cannot take a payment"):
        await module.authorize_payment_session(other.id)

    provider.gate.set()
    payment = await running
    assert payment is not None and payment.amount == D(10)
    stored = await module.retrieve_payment_session(first.id)
    assert stored.status == "authorized"
    # the claim is gone with the authorization: the amount may grow now
    assert (await module.update_payment_collections(collection.id, {"amount": 20})).amount == D(20)


async def test_a_session_replaced_while_a_lapsed_claim_ran_is_canceled_at_the_provider(
    gated: tuple[PaymentModule, GatedProvider],
) -> None:
    """Should the claim lapse (a provider slower than the claim's lease), the authorization is
    checked again when it is written: its session is gone, so it is canceled at the provider."""
    module, provider = gated
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
    first = await session(module, collection.id, 10, GATED)
    running = asyncio.create_task(module.authorize_payment_session(first.id))
    await provider.entered.wait()
    async with module.database.write() as conn:
        await conn.execute(
            text("UPDATE payment_session SET authorizing_until = :past"), {"past": utc_now() - timedelta(1)}
        )
    replacement = await create_payment_sessions(module, collection.id, provider_id=GATED)

    provider.gate.set()
    with pytest.raises(ConflictError, match="deleted or replaced while it was being authorized"):
        await running

    assert provider.calls[("cancel_payment", f"{first.id}:cancel")] == 1
    assert await module.list_payments({"payment_collection_id": collection.id}) == []
    [left] = await module.list_payment_sessions({"payment_collection_id": collection.id})
    assert left.id == replacement.id


async def test_the_claim_of_a_dead_process_does_not_hold_the_collection(module: PaymentModule) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
    first = await session(module, collection.id, 10)
    long_ago = utc_now() - timedelta(minutes=5)
    async with module.database.write() as conn:
        await conn.execute(
            text(
                "INSERT INTO process_heartbeat (id, kind, hostname, pid, started_at, heartbeat_at) "
                "VALUES ('proc_dead', 'serve', 'gone', 1, :at, :at)"
            ),
            {"at": long_ago},
        )
        await conn.execute(
            text("UPDATE payment_session SET authorizing_until = :until, authorizing_by = 'proc_dead'"),
            {"until": utc_now() + timedelta(minutes=4)},
        )

    replacement = await create_payment_sessions(module, collection.id, provider_id=TESTING)

    assert [s.id for s in await module.list_payment_sessions({"payment_collection_id": collection.id})] == [
        replacement.id
    ]
    assert first.id != replacement.id


async def test_deleted_sessions_keep_their_rows_and_a_paid_session_cannot_be_dropped(
    module: PaymentModule,
) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
    unpaid = await session(module, collection.id, 5)
    paid = await session(module, collection.id, 5)
    payment = await module.authorize_payment_session(paid.id)
    assert payment is not None

    await module.delete_payment_session(unpaid.id)
    with pytest.raises(NotAllowedError, match="has an active payment"):
        await module.delete_payment_session(paid.id)

    live = await module.list_payment_sessions({"payment_collection_id": collection.id})
    assert [s.id for s in live] == [paid.id]
    kept = await module.retrieve_payment_session(unpaid.id, {"with_deleted": True})
    assert kept.deleted_at is not None
    # the database itself refuses to lose a payment's session
    with pytest.raises(IntegrityError):
        async with module.database.write() as conn:
            await conn.execute(text("DELETE FROM payment_session WHERE id = :id"), {"id": paid.id})


async def test_an_amount_change_drops_the_stale_sessions_and_keeps_the_paid_one(
    module: PaymentModule,
) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 10})
    paid = await session(module, collection.id, 6)
    stale = await session(module, collection.id, 4)
    assert await module.authorize_payment_session(paid.id) is not None

    with pytest.raises(NotAllowedError, match="its payments hold 6"):
        await module.update_payment_collections(collection.id, {"amount": "5.99"})
    updated = await module.update_payment_collections(collection.id, {"amount": 6})

    assert (updated.amount, updated.status) == (D(6), "authorized")
    live = await module.list_payment_sessions({"payment_collection_id": collection.id})
    assert [s.id for s in live] == [paid.id]
    assert stale.id not in [s.id for s in live]


async def test_a_closed_heartbeat_frees_its_claims_at_once(database_url: str) -> None:
    async with await PaymentModule.connect(database_url, migrate=False) as module:
        assert module.process_id is not None
        process_id = module.process_id
        async with module.database.single() as conn:
            beating = (
                await conn.execute(
                    text("SELECT kind FROM process_heartbeat WHERE id = :id"), {"id": process_id}
                )
            ).scalar_one()
        assert beating == "library"
    async with await PaymentModule.connect(database_url, migrate=False) as other:
        async with other.database.single() as conn:
            gone = (
                await conn.execute(
                    text("SELECT count(*) FROM process_heartbeat WHERE id = :id"), {"id": process_id}
                )
            ).scalar_one()
        assert gone == 0


async def test_a_provider_that_releases_the_rest_closes_the_payment(
    module: PaymentModule, testing_provider: TestingPaymentProvider
) -> None:
    collection = await module.create_payment_collections({"currency_code": "usd", "amount": 100})
    first = await module.create_payment_session(
        collection.id,
        {
            "provider_id": TESTING,
            "amount": 100,
            "currency_code": "usd",
            "data": {"scenario": "single_capture"},
        },
    )
    payment = await module.authorize_payment_session(first.id)
    assert payment is not None

    closed = await module.capture_payment({"payment_id": payment.id, "amount": 60})

    assert (closed.released_amount, closed.canceled_at is not None) == (D(40), True)
    stored = await module.retrieve_payment_collection(collection.id)
    assert (stored.status, stored.captured_amount) == ("partially_captured", D(60))
    # the payment holds what it captured: 40 more fit the collection, 40.01 do not
    rest = await session(module, collection.id, 40)
    too_much = await session(module, collection.id, "40.01")
    with pytest.raises(NotAllowedError, match="already hold 60"):
        await module.authorize_payment_session(too_much.id)
    assert await module.authorize_payment_session(rest.id) is not None
