"""PayPal's disputes: the `CUSTOMER.DISPUTE.*` events mapped (units), reported by the provider for the
session of the disputed capture, recorded by the module on SQLite and PostgreSQL, and answered at the
fake PayPal (accepting the claim, providing evidence).

Shapes (developer.paypal.com/docs/api/customer-disputes/v1): a dispute has `dispute_id`,
`disputed_transactions[].seller_transaction_id` (the capture), `reason`, `status`, `dispute_amount`,
`seller_response_due_date`, `dispute_life_cycle_stage` and, once resolved,
`dispute_outcome.outcome_code`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fake_paypal import FakePayPal
from sqlalchemy import select
from test_paypal_module import approved_session
from test_paypal_provider import authorized, capture, ctx

from paymod import PaymentModule
from paymod.domain.errors import InvalidDataError, NotAllowedError, ProviderError
from paymod.domain.statuses import DisputeStatus, PaymentAction
from paymod.persistence.tables import dispute, event_outbox
from paymod.providers.base import DisputeEvidenceInput, WebhookPayload
from paymod.providers.paypal import PayPalProvider
from paymod.providers.paypal.disputes import dispute_status, provider_dispute
from paymod.webhooks.inbox import list_webhook_events, receive_webhook
from paymod.webhooks.worker import Worker

D = DisputeStatus


# -- the mapping ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stage", "status", "outcome", "expected"),
    [
        ("INQUIRY", "WAITING_FOR_SELLER_RESPONSE", None, D.WARNING_NEEDS_RESPONSE),
        ("INQUIRY", "OPEN", None, D.WARNING_UNDER_REVIEW),
        ("INQUIRY", "WAITING_FOR_BUYER_RESPONSE", None, D.WARNING_UNDER_REVIEW),
        ("INQUIRY", "UNDER_REVIEW", None, D.WARNING_UNDER_REVIEW),
        ("INQUIRY", "RESOLVED", "CANCELED_BY_BUYER", D.WARNING_CLOSED),
        ("INQUIRY", "RESOLVED", "RESOLVED_SELLER_FAVOUR", D.WARNING_CLOSED),
        ("INQUIRY", "RESOLVED", "RESOLVED_BUYER_FAVOUR", D.LOST),  # the buyer got the money back
        ("CHARGEBACK", "WAITING_FOR_SELLER_RESPONSE", None, D.NEEDS_RESPONSE),
        ("CHARGEBACK", "OPEN", None, D.UNDER_REVIEW),
        ("CHARGEBACK", "WAITING_FOR_BUYER_RESPONSE", None, D.UNDER_REVIEW),
        ("CHARGEBACK", "UNDER_REVIEW", None, D.UNDER_REVIEW),
        ("CHARGEBACK", "OTHER", None, D.UNDER_REVIEW),
        ("PRE_ARBITRATION", "WAITING_FOR_SELLER_RESPONSE", None, D.NEEDS_RESPONSE),
        (None, "WAITING_FOR_SELLER_RESPONSE", None, D.NEEDS_RESPONSE),
        ("CHARGEBACK", "RESOLVED", "RESOLVED_BUYER_FAVOUR", D.LOST),
        ("CHARGEBACK", "RESOLVED", "ACCEPTED", D.LOST),
        ("CHARGEBACK", "RESOLVED", "RESOLVED_SELLER_FAVOUR", D.WON),
        ("CHARGEBACK", "RESOLVED", "CANCELED_BY_BUYER", D.WON),
        ("CHARGEBACK", "RESOLVED", "RESOLVED_WITH_PAYOUT", D.WON),
        ("CHARGEBACK", "RESOLVED", "DENIED", D.WON),
        ("ARBITRATION", "RESOLVED", None, D.WON),
    ],
)
def test_paypals_statuses_map_onto_stripes_words(
    stage: str | None, status: str, outcome: str | None, expected: DisputeStatus
) -> None:
    found: dict[str, Any] = {"status": status, "dispute_life_cycle_stage": stage}
    if outcome:
        found["dispute_outcome"] = {"outcome_code": outcome}
    assert dispute_status(found) == expected


def test_a_dispute_maps_its_amount_reason_due_date_and_capture() -> None:
    mapped = provider_dispute(
        {
            "dispute_id": "PP-D-1",
            "disputed_transactions": [{"seller_transaction_id": "CAP1", "custom": "payses_1"}],
            "reason": "UNAUTHORISED",
            "status": "WAITING_FOR_SELLER_RESPONSE",
            "dispute_amount": {"currency_code": "JPY", "value": "1050"},
            "seller_response_due_date": "2027-01-06T07:59:59.000Z",
            "dispute_life_cycle_stage": "CHARGEBACK",
        }
    )
    assert mapped is not None
    assert (mapped.id, mapped.amount, mapped.currency_code, mapped.reason, mapped.status) == (
        "PP-D-1",
        Decimal(1050),
        "JPY",
        "UNAUTHORISED",
        D.NEEDS_RESPONSE,
    )
    assert mapped.evidence_due_by == datetime(2027, 1, 6, 7, 59, 59, tzinfo=UTC)
    assert (mapped.funds_withdrawn, mapped.funds_reinstated) == (None, None)
    assert mapped.data["capture_id"] == "CAP1" and mapped.data["stage"] == "CHARGEBACK"


def test_an_unknown_status_is_none_and_a_bad_dispute_is_refused() -> None:
    amount = {"currency_code": "USD", "value": "3.00"}
    assert provider_dispute({"dispute_id": "PP-D-2", "status": "NEW_ONE", "dispute_amount": amount}) is None
    with pytest.raises(ProviderError):
        provider_dispute({"dispute_id": "PP-D-3", "status": "OPEN", "dispute_amount": {"value": "x"}})
    with pytest.raises(ProviderError):
        provider_dispute(
            {
                "dispute_id": "PP-D-4",
                "status": "OPEN",
                "dispute_amount": amount,
                "seller_response_due_date": "soon",
            }
        )


# -- the provider -----------------------------------------------------------------------------------
async def test_a_dispute_event_names_the_session_of_the_disputed_capture(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    await capture(provider, await authorized(provider, fake, "payses_disputed"), "100", "capt_1")
    [capture_id] = fake.captures
    created = fake.dispute_outside(capture_id, Decimal(40), reason="UNAUTHORISED")
    raw, headers = fake.sign(fake.last_event("CUSTOMER.DISPUTE.CREATED"))
    result = await provider.get_webhook_action_and_data(
        WebhookPayload(data={}, raw_data=raw, headers=headers)
    )
    assert (result.action, result.session_id) == (PaymentAction.DISPUTED, "payses_disputed")
    assert result.dispute is not None
    assert (result.dispute.id, result.dispute.amount, result.dispute.status) == (
        created["dispute_id"],
        Decimal(40),
        D.NEEDS_RESPONSE,
    )
    # Tampered with: refused before anything is read.
    tampered = raw.replace(b'"40.00"', b'"4.00"')
    assert tampered != raw
    with pytest.raises(ProviderError):
        await provider.get_webhook_action_and_data(
            WebhookPayload(data={}, raw_data=tampered, headers=headers)
        )
    # A capture PayPal does not know (not one of paymod's orders): not ours.
    event = fake.last_event("CUSTOMER.DISPUTE.CREATED")
    event["resource"]["disputed_transactions"][0]["seller_transaction_id"] = "NOTACAPTURE"
    raw, headers = fake.sign(event)
    result = await provider.get_webhook_action_and_data(
        WebhookPayload(data={}, raw_data=raw, headers=headers)
    )
    assert result.action == PaymentAction.NOT_SUPPORTED


async def test_evidence_must_be_submitted_and_in_paypals_shape(
    provider: PayPalProvider, fake: FakePayPal
) -> None:
    with pytest.raises(InvalidDataError):
        await provider.submit_dispute_evidence(
            DisputeEvidenceInput(context=ctx("k1"), dispute_id="PP-D-1", evidence=EVIDENCE, submit=False)
        )
    with pytest.raises(InvalidDataError):
        await provider.submit_dispute_evidence(
            DisputeEvidenceInput(context=ctx("k2"), dispute_id="PP-D-1", evidence={"notes": "x"}, submit=True)
        )
    assert [r for r in fake.requests if "disputes" in r.path] == []
    with pytest.raises(ProviderError) as caught:  # PayPal does not know it
        await provider.submit_dispute_evidence(
            DisputeEvidenceInput(context=ctx("k3"), dispute_id="PP-D-1", evidence=EVIDENCE, submit=True)
        )
    assert caught.value.code == "invalid_resource_id"


# -- the module -------------------------------------------------------------------------------------
EVIDENCE = {
    "evidences": [
        {
            "evidence_type": "PROOF_OF_FULFILLMENT",
            "evidence_info": {"tracking_info": [{"carrier_name": "UPS", "tracking_number": "1Z999"}]},
            "notes": "Delivered, signed for.",
        }
    ]
}


async def captured(module: PaymentModule, fake: FakePayPal, amount: str = "100") -> tuple[str, str]:
    """A payment captured in full: (payment id, PayPal capture id)."""
    session = await approved_session(module, fake, amount)
    payment = await module.authorize_payment_session(session.id)
    assert payment is not None
    await module.capture_payment({"payment_id": payment.id})
    order = fake.order(session.data["id"])
    [capture] = order["purchase_units"][0]["payments"]["captures"]
    return payment.id, capture["id"]


async def deliver(module: PaymentModule, fake: FakePayPal, event: dict[str, Any]) -> str:
    """`event` signed and POSTed as PayPal would (again: same event id), applied by the worker; its
    stored status."""
    raw, headers = fake.sign(event)
    received = await receive_webhook(module, "paypal_test", raw, headers, json.loads(raw))
    worker = Worker(module)
    try:
        for _ in range(20):
            if not await worker.run_once():
                break
    finally:
        await worker.close()
    [stored] = [e for e in await list_webhook_events(module) if e["id"] == received.id]
    return str(stored["status"])


async def dispute_rows(module: PaymentModule) -> list[dict[str, Any]]:
    async with module.database.read() as conn:
        found = await conn.execute(select(dispute).order_by(dispute.c.created_at, dispute.c.id))
        return [dict(r) for r in found.mappings()]


async def dispute_events(module: PaymentModule) -> list[str]:
    async with module.database.read() as conn:
        found = await conn.execute(select(event_outbox.c.name).order_by(event_outbox.c.sequence))
        return [n for n in found.scalars() if "dispute" in n]


async def test_a_chargeback_is_recorded_once_updated_and_lost(
    paypal_module: PaymentModule, fake: FakePayPal
) -> None:
    module = paypal_module
    payment_id, capture_id = await captured(module, fake)
    created = fake.dispute_outside(capture_id, Decimal(40), reason="UNAUTHORISED")
    event = fake.last_event("CUSTOMER.DISPUTE.CREATED")
    assert await deliver(module, fake, event) == "processed"
    await deliver(module, fake, event)  # PayPal delivers it again
    [row] = await dispute_rows(module)
    assert (row["payment_id"], row["provider_dispute_id"], row["amount"], row["currency_code"]) == (
        payment_id,
        created["dispute_id"],
        Decimal(40),
        "usd",
    )
    assert (row["status"], row["reason"], row["closed_at"]) == ("needs_response", "UNAUTHORISED", None)
    assert row["evidence_due_by"] == datetime(2027, 1, 6, 7, 59, 59, tzinfo=UTC)
    assert row["data"]["capture_id"] == capture_id
    # Open: no refund.
    with pytest.raises(NotAllowedError):
        await module.refund_payment({"payment_id": payment_id, "amount": 10})

    fake.update_dispute_outside(created["dispute_id"], status="UNDER_REVIEW")
    assert await deliver(module, fake, fake.last_event("CUSTOMER.DISPUTE.UPDATED")) == "processed"
    [row] = await dispute_rows(module)
    assert row["status"] == "under_review"

    fake.resolve_dispute_outside(created["dispute_id"], "RESOLVED_BUYER_FAVOUR")
    assert await deliver(module, fake, fake.last_event("CUSTOMER.DISPUTE.RESOLVED")) == "processed"
    [row] = await dispute_rows(module)
    assert (row["status"], row["closed_at"] is not None) == ("lost", True)
    assert await dispute_events(module) == [
        "payment.disputed",
        "payment.dispute.updated",  # under review
        "payment.dispute.updated",  # lost
        "payment.dispute.closed",
    ]
    # The lost 40 went back to the buyer: 60 remain refundable.
    with pytest.raises(InvalidDataError, match="disputes lost"):
        await module.refund_payment({"payment_id": payment_id, "amount": 61})
    payment = await module.refund_payment({"payment_id": payment_id, "amount": 60})
    assert [r.amount for r in payment.refunds or []] == [Decimal(60)]


async def test_an_inquiry_closes_without_a_loss(paypal_module: PaymentModule, fake: FakePayPal) -> None:
    payment_id, capture_id = await captured(paypal_module, fake, "50")
    inquiry = fake.dispute_outside(capture_id, stage="INQUIRY")
    await deliver(paypal_module, fake, fake.last_event("CUSTOMER.DISPUTE.CREATED"))
    [row] = await dispute_rows(paypal_module)
    assert row["status"] == "warning_needs_response"
    fake.resolve_dispute_outside(inquiry["dispute_id"], "CANCELED_BY_BUYER")
    await deliver(paypal_module, fake, fake.last_event("CUSTOMER.DISPUTE.RESOLVED"))
    [row] = await dispute_rows(paypal_module)
    assert row["status"] == "warning_closed"
    payment = await paypal_module.refund_payment({"payment_id": payment_id})
    assert [r.amount for r in payment.refunds or []] == [Decimal(50)]


async def test_evidence_is_provided_and_a_claim_accepted_at_paypal(
    paypal_module: PaymentModule, fake: FakePayPal
) -> None:
    module = paypal_module
    _, capture_id = await captured(module, fake, "80")
    created = fake.dispute_outside(capture_id)
    await deliver(module, fake, fake.last_event("CUSTOMER.DISPUTE.CREATED"))
    [row] = await dispute_rows(module)

    with pytest.raises(InvalidDataError):  # PayPal keeps no drafts
        await module.submit_dispute_evidence(row["id"], EVIDENCE, submit=False)
    submitted = await module.submit_dispute_evidence(row["id"], EVIDENCE, submit=True)
    assert submitted.status == "under_review" and submitted.evidence_submitted_at is not None
    assert fake.disputes[created["dispute_id"]]["evidences"] == EVIDENCE["evidences"]
    [call] = [r for r in fake.requests if r.path.endswith("/provide-evidence")]
    assert call.request_id is not None
    # PayPal's own report of what paymod did changes nothing more.
    assert await deliver(module, fake, fake.last_event("CUSTOMER.DISPUTE.UPDATED")) == "ignored"

    second_payment, second_capture = await captured(module, fake, "50")
    other = fake.dispute_outside(second_capture)
    await deliver(module, fake, fake.last_event("CUSTOMER.DISPUTE.CREATED"))
    [lost] = [d for d in await dispute_rows(module) if d["provider_dispute_id"] == other["dispute_id"]]
    accepted = await module.accept_dispute(lost["id"])
    assert (accepted.status, accepted.accepted_at is not None) == ("lost", True)
    assert fake.disputes[other["dispute_id"]]["dispute_outcome"]["outcome_code"] == "RESOLVED_BUYER_FAVOUR"
    assert fake.effects("POST", rf"/v1/customer/disputes/{other['dispute_id']}/accept-claim") == 1
    assert await deliver(module, fake, fake.last_event("CUSTOMER.DISPUTE.RESOLVED")) == "ignored"
    with pytest.raises(NotAllowedError):
        await module.accept_dispute(lost["id"])
    with pytest.raises(InvalidDataError, match="disputes lost"):
        await module.refund_payment({"payment_id": second_payment})


async def test_a_dispute_of_a_capture_paymod_did_not_make_is_not_ours(
    paypal_module: PaymentModule, fake: FakePayPal
) -> None:
    _, capture_id = await captured(paypal_module, fake, "20")
    fake.captures[capture_id]["custom_id"] = "someone-elses-order"
    fake.dispute_outside(capture_id)
    assert await deliver(paypal_module, fake, fake.last_event("CUSTOMER.DISPUTE.CREATED")) == "ignored"
    assert await dispute_rows(paypal_module) == []


@pytest.mark.parametrize("reversal_first", [False, True], ids=["dispute_first", "reversal_first"])
async def test_the_reversal_of_a_disputed_capture_is_the_disputes_withdrawal_not_a_refund(
    paypal_module: PaymentModule, fake: FakePayPal, reversal_first: bool
) -> None:
    module = paypal_module
    payment_id, capture_id = await captured(module, fake)
    created = fake.dispute_outside(capture_id, Decimal(40))
    created_event = fake.last_event("CUSTOMER.DISPUTE.CREATED")
    if not reversal_first:
        await deliver(module, fake, created_event)
    fake.reverse_capture_outside(capture_id, Decimal(40))
    assert await deliver(module, fake, fake.last_event("PAYMENT.CAPTURE.REVERSED")) == "processed"
    if reversal_first:
        # The dispute was recorded from the reversal: its own report is no news.
        assert await deliver(module, fake, created_event) == "ignored"
    [row] = await dispute_rows(module)
    assert (row["provider_dispute_id"], row["status"], row["funds_withdrawn"]) == (
        created["dispute_id"],
        "needs_response",
        True,
    )
    payment = await module.retrieve_payment(payment_id, {"relations": ["refunds"]})
    assert payment.refunds == []

    fake.resolve_dispute_outside(created["dispute_id"], "RESOLVED_BUYER_FAVOUR")
    await deliver(module, fake, fake.last_event("CUSTOMER.DISPUTE.RESOLVED"))
    # 40 went back to the buyer once: paymod and PayPal both hold 60 refundable.
    with pytest.raises(InvalidDataError, match="disputes lost"):
        await module.refund_payment({"payment_id": payment_id, "amount": 61})
    payment = await module.refund_payment({"payment_id": payment_id, "amount": 60})
    assert [r.amount for r in payment.refunds or []] == [Decimal(60)]
    assert fake.captures[capture_id]["status"] == "REFUNDED"


async def test_the_reversal_of_a_capture_nobody_disputes_is_booked_as_a_refund(
    paypal_module: PaymentModule, fake: FakePayPal
) -> None:
    payment_id, capture_id = await captured(paypal_module, fake)
    reversal = fake.reverse_capture_outside(capture_id, Decimal(25))
    assert await deliver(paypal_module, fake, fake.last_event("PAYMENT.CAPTURE.REVERSED")) == "processed"
    payment = await paypal_module.retrieve_payment(payment_id, {"relations": ["refunds"]})
    assert [(r.amount, r.provider_refund_id) for r in payment.refunds or []] == [
        (Decimal(25), reversal["id"])
    ]
    assert await dispute_rows(paypal_module) == []
