"""Runs one money operation in a child process that a fault point kills (see test_crash_matrix)."""

from __future__ import annotations

import asyncio
import json
import sys

from paymod import PaymentModule


async def main(database_url: str, calls_file: str, op: str, target: str, key: str) -> None:
    providers = [
        {"resolve": "paymod.providers.testing", "id": "default", "options": {"calls_file": calls_file}}
    ]
    async with await PaymentModule.connect(
        database_url, providers=providers, migrate=False, sync_providers=False
    ) as module:
        if op == "capture":
            await module.capture_payment({"payment_id": target, "amount": 60, "idempotency_key": key})
        elif op == "refund":
            await module.refund_payment({"payment_id": target, "amount": 25, "idempotency_key": key})
        elif op == "cancel":
            await module.cancel_payment(target, idempotency_key=key)
        elif op == "authorize":
            await module.authorize_payment_session(target)
        print(json.dumps({"finished": op}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
