from decimal import Decimal

from paymod import PaymentModule


async def test_complete_flow_reaches_completed(module: PaymentModule) -> None:
    collection = await module.create_payment_collections({"currency_code": "USD", "amount": 200})
    session = await module.create_payment_session(
        collection.id, {"provider_id": "pp_system_default", "amount": 200, "currency_code": "usd", "data": {}}
    )
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    await module.capture_payment({"payment_id": payment.id, "amount": 200})
    collection = await module.retrieve_payment_collection(collection.id)
    assert collection.status == "completed"
    assert collection.captured_amount == Decimal(200)
