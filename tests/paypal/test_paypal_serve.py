"""An end-to-end checkout over HTTP: a real `paymod serve` process with PayPal pointed at the fake PayPal,
on SQLite and PostgreSQL. The client secret comes from the environment, as the docs tell operators."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from fake_paypal import CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID, start_fake_paypal
from paypal_settings import PROVIDER_ID

from e2e.support import ADMIN, STORE, running_server
from paymod.exact_json import loads

WAIT_SECONDS = 60.0


def write_config(directory: Path, api_base: str) -> Path:
    config = directory / "paypal.toml"
    # The shared server helper also configures the testing provider (`default`) through the environment.
    config.write_text(
        "[[providers]]\n"
        'resolve = "paymod.providers.testing"\n'
        'id = "default"\n'
        "[[providers]]\n"
        'resolve = "paymod.providers.paypal"\n'
        'id = "test"\n'
        "[providers.options]\n"
        f'client_id = "{CLIENT_ID}"\n'
        f'api_base = "{api_base}"\n'
        f'webhook_id = "{WEBHOOK_ID}"\n'
        'return_url = "https://shop.example/checkout/paypal-return"\n'
        "timeout = 10\n"
        "[webhooks]\n"
        "delay = 0\n"
        "retries = 2\n"
        "[worker]\n"
        "poll_interval = 0.05\n"
    )
    return config


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return loads(response.content)


def refunds_of(http: httpx.Client, payment_id: str) -> list[Decimal]:
    payment = ok(http.get(f"/admin/payments/{payment_id}", headers=ADMIN))["payment"]
    return sorted(Decimal(str(r["amount"])) for r in payment.get("refunds") or [])


def test_a_paypal_checkout_over_http_with_a_refund_made_at_paypal(database_url: str, tmp_path: Path) -> None:
    with start_fake_paypal() as fake:
        env = {
            "PAYMOD_CONFIG": str(write_config(tmp_path, fake.url)),
            "PAYMOD_PROVIDERS__PAYPAL__CLIENT_SECRET": CLIENT_SECRET,
        }
        with (
            running_server(database_url, tmp_path, extra_env=env) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as http,
        ):
            collection = ok(
                http.post(
                    "/admin/payment-collections",
                    json={"amount": "100", "currency_code": "usd"},
                    headers=ADMIN,
                )
            )["payment_collection"]
            sessions = ok(
                http.post(
                    f"/store/payment-collections/{collection['id']}/payment-sessions",
                    json={"provider_id": PROVIDER_ID},
                    headers=STORE,
                )
            )["payment_collection"]["payment_sessions"]
            assert [s["status"] for s in sessions] == ["requires_more"]

            authorize = f"/store/payment-collections/{collection['id']}/authorize"
            first = ok(http.post(authorize, json={}, headers={**STORE, "Idempotency-Key": "checkout-1"}))
            assert first["action_required"] is True
            approve_url = first["payment_session"]["data"]["approve_url"]
            assert approve_url.startswith(fake.url)

            # The buyer approves at PayPal and is sent back to the shop.
            back = httpx.get(approve_url, follow_redirects=False)
            assert back.status_code == 302
            assert back.headers["location"].startswith("https://shop.example/checkout/paypal-return?token=")

            paid = ok(http.post(authorize, json={}, headers={**STORE, "Idempotency-Key": "checkout-2"}))
            payment = paid["payment"]
            assert payment["provider_id"] == PROVIDER_ID

            captured = ok(
                http.post(f"/admin/payments/{payment['id']}/capture", json={"amount": 40}, headers=ADMIN)
            )["payment"]
            assert [Decimal(str(c["amount"])) for c in captured["captures"]] == [Decimal(40)]
            [paypal_capture] = fake.captures.values()
            assert (paypal_capture["amount"]["value"], paypal_capture["final_capture"]) == ("40.00", False)

            ok(http.post(f"/admin/payments/{payment['id']}/refund", json={"amount": 10}, headers=ADMIN))
            assert refunds_of(http, payment["id"]) == [Decimal(10)]

            # A refund made in the merchant's PayPal account, reported twice by PayPal: booked once.
            outside = fake.refund_outside(paypal_capture["id"], Decimal(5))
            hook = f"{server.base_url}/hooks/payment/paypal_test"
            status, body, event = fake.deliver_webhook(hook, "PAYMENT.CAPTURE.REFUNDED", outside)
            assert status == 200, body
            status, body, _ = fake.deliver_webhook(hook, "PAYMENT.CAPTURE.REFUNDED", outside, event=event)
            assert status == 200, body
            deadline = time.monotonic() + WAIT_SECONDS
            while refunds_of(http, payment["id"]) != [Decimal(5), Decimal(10)]:
                assert time.monotonic() < deadline, refunds_of(http, payment["id"])
                time.sleep(0.1)
            # paymod's own refund, reported back, changes nothing; a forged event is refused.
            ours = next(r for r in fake.refunds.values() if r.get("custom_id"))
            assert fake.deliver_webhook(hook, "PAYMENT.CAPTURE.REFUNDED", ours)[0] == 200
            assert fake.deliver_webhook(hook, "PAYMENT.CAPTURE.REFUNDED", outside, tamper=True)[0] == 400
            # Every stored event is applied (or set aside) before the books are read again.
            while ok(http.get("/admin/webhook-events?status=pending", headers=ADMIN))["count"]:
                assert time.monotonic() < deadline, "webhooks still pending"
                time.sleep(0.1)
            stored = ok(http.get("/admin/webhook-events", headers=ADMIN))["webhook_events"]
            assert len(stored) == 2  # PayPal's retry of the first event was stored once
            assert refunds_of(http, payment["id"]) == [Decimal(5), Decimal(10)]
