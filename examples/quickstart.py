import asyncio
import os

from paymod import PaymentModule


async def main() -> None:
    async with await PaymentModule.connect(
        os.environ.get("PAYMOD_DATABASE_URL", "sqlite:///./paymod.db"),  # or postgresql://user@host/shop
        providers=[{"resolve": "testing", "id": "default", "options": {"webhook_secret": "whsec_change_me"}}],
        options={"webhook_delay": 0, "webhook_retries": 3},
    ) as module:
        collection = await module.create_payment_collections({"currency_code": "usd", "amount": "49.90"})
        session = await module.create_payment_session(
            collection.id,
            {"provider_id": "pp_testing_default", "amount": "49.90", "currency_code": "usd", "data": {}},
        )
        payment = await module.authorize_payment_session(session.id)
        assert payment is not None  # None only when the provider confirms later (bank transfers)
        await module.capture_payment({"payment_id": payment.id, "amount": "20"})
        await module.capture_payment({"payment_id": payment.id})  # captures what remains
        await module.refund_payment({"payment_id": payment.id, "amount": "5", "note": "damaged box"})

        paid = await module.retrieve_payment_collection(collection.id)
        print(f"{paid.status}: captured {paid.captured_amount}, refunded {paid.refunded_amount}")


asyncio.run(main())
