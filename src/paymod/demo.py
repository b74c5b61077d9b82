"""A complete payment flow on the embedded database, printed step by step."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from paymod.services.payment_module import PaymentModule


async def run_demo(database_url: str, echo: Callable[[str], object]) -> None:
    async with await PaymentModule.connect(
        database_url, providers=[{"resolve": "paymod.providers.testing", "id": "default"}]
    ) as module:
        echo(f"database: {database_url}")
        collection = await module.create_payment_collections({"currency_code": "usd", "amount": Decimal("50.00")})
        echo(f"1. payment collection {collection.id}: {collection.amount} {collection.currency_code}, {collection.status}")

        session = await module.create_payment_session(
            collection.id,
            {
                "provider_id": "pp_testing_default",
                "amount": collection.amount,
                "currency_code": collection.currency_code,
                "data": {"scenario": "requires_more"},
            },
        )
        echo(f"2. payment session {session.id} with {session.provider_id}: {session.status}")

        try:
            await module.authorize_payment_session(session.id)
        except Exception as exc:  # noqa: BLE001 - the demo shows what a storefront would see
            session = await module.retrieve_payment_session(session.id)
            echo(f"3. authorize: {session.status} ({type(exc).__name__}: {exc}); the customer completes 3-D Secure")
        session = await module.update_payment_session({"id": session.id, "data": {"action_completed": True}})
        payment = await module.authorize_payment_session(session.id)
        assert payment is not None
        collection = await module.retrieve_payment_collection(collection.id)
        echo(f"4. authorized: payment {payment.id} for {payment.amount}; collection {collection.status}")

        payment = await module.capture_payment({"payment_id": payment.id, "amount": Decimal("30")})
        collection = await module.retrieve_payment_collection(collection.id)
        echo(f"5. captured 30.00: collection {collection.status}, captured {collection.captured_amount}")

        payment = await module.capture_payment({"payment_id": payment.id})
        collection = await module.retrieve_payment_collection(collection.id)
        echo(f"6. captured the remaining 20.00: collection {collection.status}, captured {collection.captured_amount}")

        reasons = await module.list_refund_reasons({"code": "pricing_error"})
        payment = await module.refund_payment(
            {"payment_id": payment.id, "amount": Decimal("12.50"), "refund_reason_id": reasons[0].id, "note": "coupon"}
        )
        collection = await module.retrieve_payment_collection(collection.id)
        echo(
            f"7. refunded 12.50 ({reasons[0].label}): collection {collection.status}, "
            f"refunded {collection.refunded_amount}"
        )
        echo("done")
