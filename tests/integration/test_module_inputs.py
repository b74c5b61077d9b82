"""Bad or unusual input through the Python API: a clear paymod error, nothing written."""

from __future__ import annotations

import pytest

from paymod import InvalidDataError, PaymentModule


async def test_q_is_literal_text_not_a_like_pattern(module: PaymentModule) -> None:
    await module.create_refund_reasons({"label": "50% off", "code": "promo"})
    assert [r.label for r in await module.list_refund_reasons({"q": "%"})] == ["50% off"]
    assert await module.list_refund_reasons({"q": "5_%"}) == []
    assert await module.list_refund_reasons({"q": "\\"}) == []


async def test_text_the_database_cannot_store_is_invalid_data(module: PaymentModule) -> None:
    before = len(await module.list_refund_reasons())
    if module.database.is_postgresql:
        with pytest.raises(InvalidDataError):
            await module.create_refund_reasons({"label": "nul\x00byte", "code": "x"})
    else:
        # SQLite stores NUL characters: the row round-trips exactly.
        created = await module.create_refund_reasons({"label": "nul\x00byte", "code": "x"})
        assert (await module.retrieve_refund_reason(created.id)).label == "nul\x00byte"
        before += 1
    assert len(await module.list_refund_reasons()) == before


@pytest.mark.parametrize("amount", ["1." + "1" * 21, "1e-21", "NaN", "-Infinity", "1_000", "١٢", True])
async def test_amounts_that_are_not_plain_exact_numbers_are_refused(
    module: PaymentModule, amount: object
) -> None:
    with pytest.raises(InvalidDataError):
        await module.create_payment_collections({"currency_code": "usd", "amount": amount})
    assert await module.list_payment_collections() == []


async def test_a_tool_can_connect_without_touching_the_provider_table(database_url: str) -> None:
    async with await PaymentModule.connect(
        database_url, providers=[{"resolve": "paymod.providers.testing", "id": "default"}], migrate=False
    ) as server:
        assert {p.id for p in await server.list_payment_providers({"is_enabled": True})} == {
            "pp_system_default",
            "pp_testing_default",
        }
        async with await PaymentModule.connect(database_url, migrate=False, sync_providers=False) as tool:
            assert len(await tool.list_payment_providers({"is_enabled": True})) == 2
        async with await PaymentModule.connect(database_url, migrate=False):
            pass
        assert [p.id for p in await server.list_payment_providers({"is_enabled": True})] == [
            "pp_system_default"
        ]
