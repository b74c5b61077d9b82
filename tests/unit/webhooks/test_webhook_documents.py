"""What subscribers, endpoints and operators see: the documents built from stored rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from paymod.webhooks import verify_signature
from paymod.webhooks.deliveries import signed_request
from paymod.webhooks.inbox import EVENT_FIELDS, raw_body, same_account, webhook_event_document
from paymod.webhooks.outbox import event_document, webhook_endpoint_document
from paymod.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER

CREATED = datetime(2026, 11, 29, 12, 0, 5, tzinfo=UTC)


def test_an_event_document_has_stripes_shape_with_the_causing_request() -> None:
    row = {
        "id": "evt_1",
        "name": "payment.captured",
        "created_at": CREATED,
        "payment_collection_id": "pay_col_1",
        "data": {"id": "pay_1"},
        "request_id": "req_1",
    }

    assert event_document(row) == {
        "id": "evt_1",
        "type": "payment.captured",
        "created": int(CREATED.timestamp()),
        "payment_collection_id": "pay_col_1",
        "data": {"id": "pay_1"},
        "request": {"id": "req_1"},
    }


def test_an_event_no_request_caused_has_a_null_request_id() -> None:
    row = {"id": "evt_2", "name": "x", "created_at": CREATED, "payment_collection_id": None, "data": {}}

    assert event_document(row)["request"] == {"id": None}


def test_a_delivery_posts_the_event_document_signed_with_the_endpoints_secret() -> None:
    row = {
        "id": "whdl_1",
        "event_id": "evt_1",
        "name": "payment.refunded",
        "event_created_at": CREATED,
        "payment_collection_id": "pay_col_1",
        "data": {"id": "pay_1", "amount": Decimal("10.50")},
        "request_id": None,
    }

    body, headers = signed_request(row, "whsec_endpoint", timestamp=int(CREATED.timestamp()))

    assert json.loads(body) == {
        "id": "evt_1",
        "type": "payment.refunded",
        "created": int(CREATED.timestamp()),
        "payment_collection_id": "pay_col_1",
        "data": {"id": "pay_1", "amount": "10.50"},
        "request": {"id": None},
    }
    assert headers["content-type"] == "application/json"
    assert headers[EVENT_ID_HEADER] == "evt_1"
    verify_signature(body, headers[SIGNATURE_HEADER], "whsec_endpoint", now=int(CREATED.timestamp()))


def test_an_endpoint_document_hides_the_secret_unless_asked_and_fills_defaults() -> None:
    row = {"id": "we_1", "url": "https://shop.example/hook", "events": ["*"], "secret": "whsec_x"}

    shown = webhook_endpoint_document(row)
    created = webhook_endpoint_document(row, secret=True)

    assert "secret" not in shown and created["secret"] == "whsec_x"
    assert (shown["enabled"], shown["consecutive_failures"], shown["disabled_at"]) == (True, 0, None)
    assert list(shown) == [
        "id",
        "url",
        "events",
        "enabled",
        "description",
        "failing_since",
        "consecutive_failures",
        "retry_at",
        "disabled_at",
        "disabled_reason",
        "created_at",
        "updated_at",
    ]


def test_a_stored_events_document_shows_its_payload_only_on_request() -> None:
    row = {name: f"<{name}>" for name in EVENT_FIELDS} | {"payload": {"body": "{}", "headers": {}}}

    assert list(webhook_event_document(row)) == list(EVENT_FIELDS)
    assert webhook_event_document(row, payload=True)["payload"] == {"body": "{}", "headers": {}}


def test_the_raw_body_comes_back_from_text_or_base64() -> None:
    assert raw_body({"body": '{"a":1}'}) == b'{"a":1}'
    assert raw_body({"body_base64": "AP8="}) == b"\x00\xff"
    assert raw_body({}) == b""


def test_variants_of_one_provider_on_one_configuration_share_an_account() -> None:
    assert same_account("pp_stripe_stripe", "pp_stripe_stripe")
    assert same_account("pp_stripe_stripe", "pp_stripe-ideal_stripe")
    assert not same_account("pp_stripe_stripe", "pp_stripe_other")
    assert not same_account("pp_testing_default", "pp_stripe_default")
