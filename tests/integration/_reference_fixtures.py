"""Medusa's payment-module test fixtures (reference 9.2 "Fixtures"), loaded through paymod itself.

Collections and sessions go through the public API with explicit ids. Payments cannot be created
through the API with a chosen id, so they are written with paymod's own persistence layer, exactly
as Medusa's fixtures write them: the sessions stay `pending`, as in Medusa.
"""

from __future__ import annotations

from decimal import Decimal

from paymod import PaymentModule
from paymod.persistence import entities
from paymod.persistence.repository import Repository

SYSTEM = "pp_system_default"
TESTING = "pp_testing_default"

COLLECTIONS = [
    {"id": "pay-col-id-1", "amount": 100, "currency_code": "usd"},
    {"id": "pay-col-id-2", "amount": 200, "currency_code": "usd"},
    {"id": "pay-col-id-3", "amount": 300, "currency_code": "usd"},
]

SESSIONS = [
    ("pay-col-id-1", {"id": "pay-sess-id-1", "amount": 100, "currency_code": "usd", "provider_id": SYSTEM}),
    ("pay-col-id-2", {"id": "pay-sess-id-2", "amount": 100, "currency_code": "usd", "provider_id": SYSTEM}),
    ("pay-col-id-2", {"id": "pay-sess-id-3", "amount": 100, "currency_code": "usd", "provider_id": SYSTEM}),
]

PAYMENTS = [
    {
        "id": "pay-id-1",
        "amount": Decimal(100),
        "currency_code": "usd",
        "provider_id": SYSTEM,
        "data": {},
        "status": "authorized",  # written by hand: the status the module stores for a new payment
        "payment_collection_id": "pay-col-id-1",
        "payment_session_id": "pay-sess-id-1",
    },
    {
        "id": "pay-id-2",
        "amount": Decimal(100),
        "currency_code": "usd",
        "provider_id": SYSTEM,
        "data": {},
        "status": "authorized",  # written by hand: the status the module stores for a new payment
        "payment_collection_id": "pay-col-id-2",
        "payment_session_id": "pay-sess-id-2",
    },
]


async def load_reference_fixtures(module: PaymentModule) -> None:
    """pay-col-id-1/2/3, pay-sess-id-1/2/3 and pay-id-1/2, as in Medusa's `__fixtures__/data.ts`."""
    await module.create_payment_collections(COLLECTIONS)
    for collection_id, session in SESSIONS:
        await module.create_payment_session(collection_id, {**session, "data": {}})
    async with module.database.write() as conn:
        await Repository(entities.PAYMENT, module.database.dialect).insert(conn, PAYMENTS)
