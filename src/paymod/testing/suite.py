"""`ProviderConformance`: the kit's tests, run through `PaymentModule` against one driver.

Subclass it in a module pytest collects (`class TestAcme(ProviderConformance): driver = AcmeDriver()`)
or leave `driver` unset and provide a `driver` fixture. Each test runs on a fresh SQLite database.
A test of a capability the driver does not declare is skipped with that capability's name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from paymod.domain.errors import NotAllowedError, PaymodError, ProviderError, RetryableProviderError
from paymod.domain.statuses import PaymentAction, PaymentSessionStatus
from paymod.providers.base import ProviderInput, WebhookPayload
from paymod.services.dto import PaymentDTO, PaymentSessionDTO
from paymod.testing.driver import Capability, Harness, Operation, ProviderDriver, Scenario
from paymod.testing.harness import open_harness


def needs(driver: ProviderDriver, *capabilities: Capability) -> None:
    """Skips the test, naming what is missing, unless the driver declares every capability."""
    missing = [c.value for c in capabilities if c not in driver.capabilities]
    if missing:
        pytest.skip(f"{type(driver).__name__} declares no {', '.join(missing)}")


def needs_webhook(driver: ProviderDriver, action: PaymentAction) -> None:
    needs(driver, Capability.WEBHOOKS)
    if action not in driver.webhooks:
        pytest.skip(f"{type(driver).__name__} declares no `{action.value}` webhook")


def keys(harness: Harness, operation: Operation) -> list[str | None]:
    return harness.driver.idempotency_keys(harness, operation)


async def provider_agrees(harness: Harness, payment: PaymentDTO) -> None:
    """The provider's own books hold what paymod booked as captured, where the driver can tell."""
    held = await harness.driver.captured_at_provider(harness, payment)
    if held is not None:
        booked = sum((c.amount for c in (await harness.payment(payment.id)).captures or []), Decimal(0))
        assert held == booked, f"the provider captured {held}, paymod booked {booked}"


#: The session status each status-only webhook action sets (paymod books nothing for them).
STATUS_ACTIONS = {
    PaymentAction.FAILED: PaymentSessionStatus.ERROR,
    PaymentAction.REQUIRES_MORE: PaymentSessionStatus.REQUIRES_MORE,
}
#: Every webhook action the kit checks; a driver declaring another is told so.
CHECKED_WEBHOOKS = frozenset(
    {PaymentAction.AUTHORIZED, PaymentAction.SUCCESSFUL, PaymentAction.CANCELED, PaymentAction.REFUNDED}
    | set(STATUS_ACTIONS)
)


async def signed_webhook(
    harness: Harness, action: PaymentAction, session: PaymentSessionDTO, amount: Decimal
) -> WebhookPayload:
    """The driver's event for `action`, checked to verify and to mean `action` for `session`."""
    event = await harness.driver.webhook(harness, action, session, amount)
    said = await harness.read_webhook(event)
    assert PaymentAction(said.action) == action, f"a `{action.value}` event was read as `{said.action}`"
    assert said.data is not None and said.data.session_id == session.id, f"the event names {said.data}"
    return event


@pytest.mark.asyncio
class ProviderConformance:
    """The conformance tests; `driver` is the provider's `ProviderDriver`."""

    driver: ClassVar[ProviderDriver | None] = None

    @pytest.fixture
    def conformance_driver(self, request: pytest.FixtureRequest) -> ProviderDriver:
        """The class's `driver`, else the `driver` fixture (for a driver that needs other fixtures)."""
        driver = type(self).driver
        if driver is None:
            # Asked for here, in a plain fixture: an async `driver` fixture cannot be set up from
            # inside another async fixture.
            driver = request.getfixturevalue("driver")
        if not isinstance(driver, ProviderDriver):
            raise TypeError(f"the conformance driver must be a ProviderDriver, not {driver!r}")
        return driver

    @pytest_asyncio.fixture
    async def kit(
        self, conformance_driver: ProviderDriver, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
    ) -> AsyncIterator[Harness]:
        async with open_harness(conformance_driver, tmp_path, tmp_path_factory.getbasetemp()) as harness:
            yield harness

    # -- sessions ---------------------------------------------------------------------------------
    async def test_a_session_is_initiated_with_the_provider(self, kit: Harness) -> None:
        session = await kit.session()
        assert session.provider_id == kit.provider_id
        assert (session.amount, session.currency_code) == (kit.driver.amount, kit.driver.currency_code)
        assert session.status != PaymentSessionStatus.ERROR
        [listed] = await kit.module.list_payment_sessions(
            {"payment_collection_id": session.payment_collection_id}
        )
        assert listed.id == session.id

    async def test_a_session_amount_is_updated_through_the_provider(self, kit: Harness) -> None:
        session = await kit.session(Scenario.OPEN)
        lower = kit.share(8)
        updated = await kit.module.update_payment_session({"id": session.id, "amount": lower})
        assert updated.amount == lower
        assert (await kit.module.retrieve_payment_session(session.id)).amount == lower

    # -- authorization ------------------------------------------------------------------------------
    async def test_a_session_is_authorized_and_its_payment_created_once(self, kit: Harness) -> None:
        session, payment = await kit.authorized()
        assert kit.is_authorized(session)
        assert (payment.amount, payment.payment_session_id) == (kit.driver.amount, session.id)
        again = await kit.module.authorize_payment_session(session.id)
        assert again is not None and again.id == payment.id
        collection = await kit.module.retrieve_payment_collection(session.payment_collection_id)
        assert (collection.status, collection.authorized_amount) == ("authorized", kit.driver.amount)

    async def test_a_session_needing_customer_action_is_authorized_once_it_is_done(
        self, kit: Harness
    ) -> None:
        needs(kit.driver, Capability.CUSTOMER_ACTION)
        session = await kit.session(Scenario.CUSTOMER_ACTION)
        try:
            payment = await kit.module.authorize_payment_session(session.id)
        except NotAllowedError:
            payment = None
        assert payment is None, "a session needing customer action was authorized before it was done"
        session = await kit.module.retrieve_payment_session(session.id)
        assert session.status == PaymentSessionStatus.REQUIRES_MORE
        assert await kit.module.list_payments({"payment_session_id": session.id}) == []

        await kit.driver.complete_customer_action(kit, session)
        payment = await kit.module.authorize_payment_session(session.id)
        assert payment is not None and payment.amount == kit.driver.amount
        assert kit.is_authorized(await kit.module.retrieve_payment_session(session.id))

    async def test_a_declined_session_books_nothing(self, kit: Harness) -> None:
        needs(kit.driver, Capability.DECLINE)
        collection = await kit.module.create_payment_collections(
            {"currency_code": kit.driver.currency_code, "amount": kit.driver.amount}
        )
        try:
            session = await kit.module.create_payment_session(
                collection.id,
                {
                    "provider_id": kit.provider_id,
                    "amount": kit.driver.amount,
                    "currency_code": kit.driver.currency_code,
                    "data": kit.driver.session_data(Scenario.DECLINE),
                },
            )
        except ProviderError:
            # Declined as the session was created (a card confirmed at once): nothing stored.
            assert await kit.module.list_payment_sessions({"payment_collection_id": collection.id}) == []
        else:
            with pytest.raises(PaymodError):
                await kit.module.authorize_payment_session(session.id)
            session = await kit.module.retrieve_payment_session(session.id)
            assert session.status == PaymentSessionStatus.ERROR
            assert await kit.module.list_payments({"payment_session_id": session.id}) == []
        collection = await kit.module.retrieve_payment_collection(collection.id)
        assert collection.status in ("not_paid", "awaiting")
        assert not collection.authorized_amount

    # -- captures -----------------------------------------------------------------------------------
    async def test_a_full_capture_completes_the_collection(self, kit: Harness) -> None:
        session, payment = await kit.authorized()
        payment = await kit.module.capture_payment({"payment_id": payment.id})
        assert [c.amount for c in payment.captures or []] == [kit.driver.amount]
        assert payment.captured_at is not None
        collection = await kit.module.retrieve_payment_collection(session.payment_collection_id)
        assert (collection.status, collection.captured_amount) == ("completed", kit.driver.amount)
        await provider_agrees(kit, payment)

    async def test_partial_captures_add_up_to_the_authorized_amount(self, kit: Harness) -> None:
        needs(kit.driver, Capability.PARTIAL_CAPTURE)
        session, payment = await kit.authorized()
        first = kit.share(3)
        payment = await kit.module.capture_payment({"payment_id": payment.id, "amount": first})
        assert [c.amount for c in payment.captures or []] == [first]
        collection = await kit.module.retrieve_payment_collection(session.payment_collection_id)
        assert collection.captured_amount == first
        await provider_agrees(kit, payment)
        needs(kit.driver, Capability.MULTIPLE_CAPTURES)
        payment = await kit.module.capture_payment({"payment_id": payment.id})
        assert sorted(c.amount for c in payment.captures or []) == sorted([first, kit.driver.amount - first])
        assert payment.captured_at is not None
        collection = await kit.module.retrieve_payment_collection(session.payment_collection_id)
        assert (collection.status, collection.captured_amount) == ("completed", kit.driver.amount)
        await provider_agrees(kit, payment)

    async def test_a_capture_beyond_the_authorized_amount_is_refused(self, kit: Harness) -> None:
        _, payment = await kit.authorized()
        with pytest.raises(PaymodError) as refused:
            await kit.module.capture_payment({"payment_id": payment.id, "amount": kit.driver.amount + 1})
        assert not isinstance(refused.value, ProviderError), "paymod must refuse it before the provider"
        assert (await kit.payment(payment.id)).captures == []

    async def test_a_capture_whose_outcome_was_unknown_is_booked_once_when_retried(
        self, kit: Harness
    ) -> None:
        needs(kit.driver, Capability.UNKNOWN_OUTCOME)
        session, payment = await kit.authorized()
        await kit.driver.lose_next_capture(kit, payment)
        with pytest.raises(RetryableProviderError):
            await kit.module.capture_payment(
                {"payment_id": payment.id, "idempotency_key": "conformance-capture"}
            )
        payment = await kit.module.capture_payment(
            {"payment_id": payment.id, "idempotency_key": "conformance-capture"}
        )
        assert [c.amount for c in payment.captures or []] == [kit.driver.amount]
        collection = await kit.module.retrieve_payment_collection(session.payment_collection_id)
        assert (collection.status, collection.captured_amount) == ("completed", kit.driver.amount)
        await provider_agrees(kit, payment)
        if Capability.IDEMPOTENCY_KEYS in kit.driver.capabilities:
            seen = keys(kit, Operation.CAPTURE)
            assert seen and len(set(seen)) == 1 and seen[0], f"the retried capture changed its key: {seen}"

    # -- refunds ------------------------------------------------------------------------------------
    async def test_refunds_are_booked_up_to_what_was_captured(self, kit: Harness) -> None:
        needs(kit.driver, Capability.REFUNDS)
        session, payment = await kit.authorized()
        await kit.module.capture_payment({"payment_id": payment.id})
        refunds = [kit.share(2)]
        payment = await kit.module.refund_payment({"payment_id": payment.id, "amount": refunds[0]})
        if Capability.MULTIPLE_REFUNDS in kit.driver.capabilities:
            refunds.append(kit.share(3))
            payment = await kit.module.refund_payment({"payment_id": payment.id, "amount": refunds[1]})
        assert sorted(r.amount for r in payment.refunds or []) == sorted(refunds)
        collection = await kit.module.retrieve_payment_collection(session.payment_collection_id)
        assert collection.refunded_amount == sum(refunds)
        # What is left can still be refunded, and not a cent more.
        rest = kit.driver.amount - sum(refunds)
        with pytest.raises(PaymodError) as refused:
            await kit.module.refund_payment({"payment_id": payment.id, "amount": rest + kit.cent})
        assert not isinstance(refused.value, ProviderError)

    async def test_a_refund_beyond_what_was_captured_is_refused_before_the_provider(
        self, kit: Harness
    ) -> None:
        needs(kit.driver, Capability.REFUNDS, Capability.PARTIAL_CAPTURE)
        _, payment = await kit.authorized()
        captured = kit.share(5)
        await kit.module.capture_payment({"payment_id": payment.id, "amount": captured})
        with pytest.raises(PaymodError) as refused:
            await kit.module.refund_payment({"payment_id": payment.id, "amount": captured + kit.cent})
        assert not isinstance(refused.value, ProviderError), "paymod must refuse it before the provider"
        assert (await kit.payment(payment.id)).refunds == []
        if Capability.IDEMPOTENCY_KEYS in kit.driver.capabilities:
            assert keys(kit, Operation.REFUND) == []

    # -- cancel and status --------------------------------------------------------------------------
    async def test_an_authorized_payment_is_canceled(self, kit: Harness) -> None:
        needs(kit.driver, Capability.CANCEL)
        session, payment = await kit.authorized()
        payment = await kit.module.cancel_payment(payment.id)
        assert payment.canceled_at is not None
        with pytest.raises(PaymodError):
            await kit.module.capture_payment({"payment_id": payment.id})
        collection = await kit.module.retrieve_payment_collection(session.payment_collection_id)
        assert not collection.captured_amount

    async def test_the_provider_reports_an_authorized_payment_as_authorized(self, kit: Harness) -> None:
        needs(kit.driver, Capability.PAYMENT_STATUS)
        session, _ = await kit.authorized()
        status = await kit.provider.get_payment_status(ProviderInput(data=dict(session.data)))
        assert status.status == PaymentSessionStatus.AUTHORIZED

    # -- idempotency keys ---------------------------------------------------------------------------
    async def test_each_operation_has_its_own_key_and_a_replay_reaches_no_provider(
        self, kit: Harness
    ) -> None:
        needs(kit.driver, Capability.IDEMPOTENCY_KEYS)
        _, payment = await kit.authorized()
        capture: dict[str, Any] = {"payment_id": payment.id, "idempotency_key": "conformance-capture"}
        if Capability.PARTIAL_CAPTURE in kit.driver.capabilities:
            capture["amount"] = kit.share(6)
        await kit.module.capture_payment(capture)
        before = keys(kit, Operation.CAPTURE)
        replayed = await kit.module.capture_payment(capture)
        assert keys(kit, Operation.CAPTURE) == before, "a replayed capture called the provider again"
        assert len(replayed.captures or []) == 1
        seen = list(before)
        if Capability.REFUNDS in kit.driver.capabilities:
            await kit.module.refund_payment({"payment_id": payment.id, "amount": kit.share(1)})
            if Capability.MULTIPLE_REFUNDS in kit.driver.capabilities:
                await kit.module.refund_payment({"payment_id": payment.id, "amount": kit.share(1)})
            seen += keys(kit, Operation.REFUND)
        assert all(seen), f"a provider call went without an idempotency key: {seen}"
        assert len(set(seen)) == len(seen), f"two operations shared an idempotency key: {seen}"

    # -- webhooks -----------------------------------------------------------------------------------
    async def test_an_authorized_webhook_authorizes_the_session(self, kit: Harness) -> None:
        needs_webhook(kit.driver, PaymentAction.AUTHORIZED)
        session = await kit.session()
        await kit.deliver(await signed_webhook(kit, PaymentAction.AUTHORIZED, session, kit.driver.amount))
        [payment] = await kit.module.list_payments({"payment_session_id": session.id})
        assert payment.amount == kit.driver.amount
        collection = await kit.module.retrieve_payment_collection(session.payment_collection_id)
        assert collection.status == "authorized"

    async def test_a_captured_webhook_books_the_capture_once(self, kit: Harness) -> None:
        needs_webhook(kit.driver, PaymentAction.SUCCESSFUL)
        session, payment = await kit.authorized()
        event = await signed_webhook(kit, PaymentAction.SUCCESSFUL, session, kit.driver.amount)
        await kit.deliver(event)
        await kit.deliver(event)
        payment = await kit.payment(payment.id)
        assert [c.amount for c in payment.captures or []] == [kit.driver.amount]
        collection = await kit.module.retrieve_payment_collection(session.payment_collection_id)
        assert (collection.status, collection.captured_amount) == ("completed", kit.driver.amount)

    async def test_a_canceled_webhook_cancels_the_payment(self, kit: Harness) -> None:
        needs_webhook(kit.driver, PaymentAction.CANCELED)
        session, payment = await kit.authorized()
        await kit.deliver(await signed_webhook(kit, PaymentAction.CANCELED, session, kit.driver.amount))
        payment = await kit.payment(payment.id)
        assert payment.canceled_at is not None and payment.captures == []

    async def test_a_refunded_webhook_books_the_refund_once(self, kit: Harness) -> None:
        needs_webhook(kit.driver, PaymentAction.REFUNDED)
        session, payment = await kit.authorized()
        await kit.module.capture_payment({"payment_id": payment.id})
        amount = kit.share(2)
        event = await signed_webhook(kit, PaymentAction.REFUNDED, session, amount)
        await kit.deliver(event)
        await kit.deliver(event)
        payment = await kit.payment(payment.id)
        assert [r.amount for r in payment.refunds or []] == [amount]
        collection = await kit.module.retrieve_payment_collection(session.payment_collection_id)
        assert collection.refunded_amount == amount

    @pytest.mark.parametrize("action", sorted(STATUS_ACTIONS), ids=str)
    async def test_a_status_webhook_sets_the_session_status_and_books_nothing(
        self, kit: Harness, action: PaymentAction
    ) -> None:
        needs_webhook(kit.driver, action)
        session = await kit.session(Scenario.OPEN)
        await kit.deliver(await signed_webhook(kit, action, session, kit.driver.amount))
        session = await kit.module.retrieve_payment_session(session.id)
        assert session.status == STATUS_ACTIONS[action]
        assert await kit.module.list_payments({"payment_session_id": session.id}) == []

    async def test_every_declared_webhook_is_one_the_kit_checks(
        self, conformance_driver: ProviderDriver
    ) -> None:
        unchecked = sorted(a.value for a in conformance_driver.webhooks - CHECKED_WEBHOOKS)
        assert not unchecked, f"the kit has no check for the declared webhooks {unchecked}: leave them out"

    async def test_a_webhook_with_a_tampered_body_is_refused(self, kit: Harness) -> None:
        needs(kit.driver, Capability.WEBHOOKS)
        action = sorted(kit.driver.webhooks)[0]
        session, _ = await kit.authorized()
        event = await kit.driver.webhook(kit, action, session, kit.driver.amount)
        tampered = WebhookPayload(
            data=event.data, raw_data=event.raw_data.replace(b'"', b' "', 1), headers=event.headers
        )
        with pytest.raises(PaymodError):
            await kit.deliver(tampered)

    # -- account holders and saved methods ----------------------------------------------------------
    async def test_an_account_holder_is_created_once_per_customer_and_deleted(self, kit: Harness) -> None:
        needs(kit.driver, Capability.ACCOUNT_HOLDERS)
        customer = kit.driver.customer()
        holder = await kit.module.create_account_holder(
            {"provider_id": kit.provider_id, "context": {"customer": customer}}
        )
        again = await kit.module.create_account_holder(
            {"provider_id": kit.provider_id, "context": {"customer": customer}}
        )
        assert holder is not None and again is not None and again.id == holder.id
        assert holder.external_id and holder.customer_id == customer["id"]
        if Capability.SAVED_METHODS in kit.driver.capabilities:
            method_id = await kit.driver.save_payment_method(kit, holder)
            listed = await kit.module.list_payment_methods(
                {
                    "provider_id": kit.provider_id,
                    "context": {"account_holder": holder.model_dump(mode="json")},
                }
            )
            assert method_id in [m.id for m in listed]
        await kit.module.delete_account_holder(holder.id)
        assert await kit.module.list_account_holders({"provider_id": kit.provider_id}) == []
