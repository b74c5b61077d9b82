"""A complete payment flow on the embedded database, printed step by step."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from paymod.domain.errors import NotAllowedError
from paymod.services.payment_module import PaymentModule

TESTING_PROVIDER = {"resolve": "paymod.providers.testing", "id": "default"}


async def run_demo(database_url: str, echo: Callable[[str], object]) -> None:
    async with await PaymentModule.connect(database_url, providers=[TESTING_PROVIDER]) as module:

        async def show(step: str, collection_id: str) -> None:
            c = await module.retrieve_payment_collection(collection_id)
            echo(
                f"{step:<34} collection {c.status:<20} authorized {c.authorized_amount or 0} "
                f"captured {c.captured_amount or 0} refunded {c.refunded_amount or 0}"
            )

        echo(f"database: {database_url}")
        collection = await module.create_payment_collections(
            {"currency_code": "usd", "amount": Decimal("50.00")}
        )
        await show(f"collection of {collection.amount} usd", collection.id)

        session = await module.create_payment_session(
            collection.id,
            {
                "provider_id": "pp_testing_default",
                "amount": collection.amount,
                "currency_code": collection.currency_code,
                "data": {"scenario": "requires_more"},
            },
        )
        await show(f"session {session.status}", collection.id)

        try:
            await module.authorize_payment_session(session.id)
        except NotAllowedError:
            session = await module.retrieve_payment_session(session.id)
            await show(f"authorize: session {session.status}", collection.id)
        session = await module.update_payment_session({"id": session.id, "data": {"action_completed": True}})
        payment = await module.authorize_payment_session(session.id)
        assert payment is not None
        await show("3-D Secure done, authorized", collection.id)

        await module.capture_payment({"payment_id": payment.id, "amount": Decimal("30")})
        await show("captured 30", collection.id)
        await module.capture_payment({"payment_id": payment.id})
        await show("captured the remaining 20", collection.id)

        reason = (await module.list_refund_reasons({"code": "pricing_error"}))[0]
        await module.refund_payment(
            {"payment_id": payment.id, "amount": "12.50", "refund_reason_id": reason.id}
        )
        await show(f"refunded 12.50 ({reason.label})", collection.id)
        echo("done")
