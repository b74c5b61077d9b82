"""Payment sessions: created with their provider, updated, deleted, reported on by webhooks, read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ulid import ULID

from paymod.domain.errors import (
    ConflictError,
    InvalidDataError,
    NotAllowedError,
)
from paymod.domain.ids import PAYMENT_SESSION, new_id
from paymod.domain.rules import SessionFacts
from paymod.domain.statuses import PaymentSessionStatus
from paymod.persistence import entities as e
from paymod.persistence.ledger import NewRow
from paymod.persistence.repository import Row
from paymod.providers.base import (
    InitiatePaymentInput,
    ProviderInput,
    UpdatePaymentInput,
)
from paymod.services.core import Config, Filters, ModuleCore
from paymod.services.dto import (
    PaymentCollectionDTO,
    PaymentSessionDTO,
)
from paymod.services.inputs import (
    as_mapping,
    optional_object,
    optional_text,
    parse_amount,
    parse_currency,
    provider_context,
    required,
)


class SessionsMixin(ModuleCore):
    """Payment sessions (Medusa's `*PaymentSession` methods)."""

    async def create_payment_session(
        self, payment_collection_id: str, data: Mapping[str, Any], *, replace: bool = False
    ) -> PaymentSessionDTO:
        """Creates a session and initiates the payment with its provider. When the collection then has
        this one session and no payment, the session comes with it (`payment_collection`, with its
        sessions and payments), as the transaction wrote it.

        The session id is minted first and is the provider's idempotency key; the row is written once
        the provider answered (a provider failure writes nothing), under the collection's lock, where
        what was checked before the call is checked again (otherwise the provider's side is undone).

        `replace`: the store's checkout (Medusa's create-payment-sessions). The session is for the
        collection's amount (unless `amount` is given) and replaces its other sessions in the same
        transaction; refused while the collection has a payment that is not canceled, or an
        authorization in flight. A session another request created meanwhile, or an amount changed
        meanwhile, makes this request a 409 `conflict`: racing requests leave exactly one session.
        """
        data = as_mapping(data, "payment session")
        provider_id = required(data, "PaymentSession", "provider_id")
        provider = self.provider(provider_id)
        # The store's checkout pays the collection in its own currency.
        currency_code = (
            None
            if replace and data.get("currency_code") is None
            else parse_currency(required(data, "PaymentSession", "currency_code"))
        )
        input_data = optional_object(data, "data") or {}
        context = optional_object(data, "context")
        metadata = optional_object(data, "metadata")
        async with self.database.single() as conn:
            seen = await self.ledger.collection_facts(conn, payment_collection_id, provider_id)
        if seen is None:
            raise self._repo(e.PAYMENT_COLLECTION).not_found(payment_collection_id)
        if not seen.provider_enabled:
            raise NotAllowedError(f"Payment provider {provider_id} is not enabled.")
        currency_code = currency_code or seen.currency_code
        if replace and data.get("amount") is None:
            amount = seen.amount
        else:
            amount = parse_amount(required(data, "PaymentSession", "amount"))
        self._check_session_currency(currency_code, seen.currency_code)
        if replace:
            self._check_replaceable(seen)
        session_id = str(data.get("id") or new_id(PAYMENT_SESSION))
        result = await provider.initiate_payment(
            InitiatePaymentInput(
                data={**input_data, "session_id": session_id},
                context=provider_context(context, session_id),
                amount=amount,
                currency_code=currency_code,
            )
        )
        status = PaymentSessionStatus(result.status or PaymentSessionStatus.PENDING)
        replaced: list[Row] = []
        try:
            async with self.database.write() as conn:
                facts = await self.ledger.lock_collection(conn, payment_collection_id)
                self._check_session_currency(currency_code, facts.currency_code)
                if replace:
                    self._check_replaceable(facts)
                    seen_ids = {s.id for s in seen.sessions}
                    if facts.amount != seen.amount or any(s.id not in seen_ids for s in facts.sessions):
                        raise ConflictError(
                            f"Payment collection {payment_collection_id} changed while this payment session "
                            "was being created (another request won the race). Retry the request."
                        )
                    replaced = await self._soft_delete_sessions(
                        conn, [s.id for s in facts.sessions], payment_collection_id
                    )
                new_session = NewRow(
                    e.PAYMENT_SESSION,
                    {
                        "id": session_id,
                        "payment_collection_id": payment_collection_id,
                        "provider_id": provider_id,
                        "amount": amount,
                        "currency_code": currency_code,
                        "data": {**input_data, **(result.data or {})},
                        "context": context,
                        "metadata": metadata,
                        "status": status.value,
                    },
                )
                self._emit(conn, "payment-session.created", session_id, payment_collection_id)
                dropped = {r["id"] for r in replaced}
                created = SessionFacts(
                    status=status.value, amount=amount, currency_code=currency_code, id=session_id
                )
                kept = [s for s in facts.sessions if s.id not in dropped]
                # The session is written by the statement that stores the collection's totals.
                collection = await self._recompute_collection(
                    conn,
                    payment_collection_id,
                    facts=facts.changed(sessions=[*kept, created]),
                    new_row=new_session,
                )
                assert new_session.row is not None
                rows = [new_session.row]
        except BaseException:
            # Unlike Medusa, the provider gets its own data back, so it can cancel what it created.
            await self._quietly(provider.delete_payment(ProviderInput(data=dict(result.data or {}))))
            raise
        await self._drop_at_providers(replaced)
        session = PaymentSessionDTO.model_validate(rows[0])
        if not kept and not facts.payments:
            # The transaction wrote all there is of the collection: its row, this one session and no
            # payment. It comes along, so a caller answering with the collection need not read it again.
            session.payment_collection = PaymentCollectionDTO.model_validate(
                {**collection, "payment_sessions": [rows[0]], "payments": []}
            )
        return session

    async def update_payment_session(self, data: Mapping[str, Any]) -> PaymentSessionDTO:
        """Updates amount, currency, data, status, context or metadata through the provider.

        The provider sees the stored data merged with the new data (Medusa sends only the new data).
        The row is written under the collection's lock, refused if the session was authorized, or
        is being authorized, meanwhile.
        """
        data = as_mapping(data, "payment session")
        session_id = required(data, "PaymentSession", "id")
        async with self.database.read() as conn:
            session = await self._repo(e.PAYMENT_SESSION).get(conn, session_id)
            collection = await self._repo(e.PAYMENT_COLLECTION).get(conn, session["payment_collection_id"])
            has_payment = await self._repo(e.PAYMENT).count(conn, {"payment_session_id": session_id}) > 0
        if has_payment:
            raise NotAllowedError(f"Payment session {session_id} is authorized and cannot be updated.")
        currency_code = (
            parse_currency(data["currency_code"]) if data.get("currency_code") else session["currency_code"]
        )
        self._check_session_currency(currency_code, collection["currency_code"])
        amount = parse_amount(data["amount"]) if data.get("amount") is not None else session["amount"]
        status = None
        if data.get("status") is not None:
            try:
                status = PaymentSessionStatus(data["status"])
            except ValueError:
                raise InvalidDataError(f"Invalid payment session status {data['status']!r}") from None
        context = optional_object(data, "context")
        merged = {**session["data"], **(optional_object(data, "data") or {})}
        result = await self.provider(session["provider_id"]).update_payment(
            UpdatePaymentInput(
                data=merged,
                # Each update is its own operation at the provider (Stripe replays a key's first answer).
                context=provider_context(
                    context or session["context"],
                    optional_text(data, "idempotency_key") or f"{session_id}:update:{ULID()}",
                ),
                amount=amount,
                currency_code=currency_code,
            )
        )
        values: dict[str, Any] = {
            "amount": amount,
            "currency_code": currency_code,
            "data": result.data if result.data is not None else merged,
            "status": (status or result.status or PaymentSessionStatus(session["status"])).value,
        }
        if context is not None:
            values["context"] = context
        if "metadata" in data:
            values["metadata"] = optional_object(data, "metadata")
        async with self.database.write() as conn:
            facts = await self.ledger.lock_collection(conn, session["payment_collection_id"])
            current = facts.session(session_id)
            if current is None:
                raise self._repo(e.PAYMENT_SESSION).not_found(session_id)
            if facts.live_payment_of(session_id) is not None or current.authorizing:
                raise ConflictError(
                    f"Payment session {session_id} was authorized, or is being authorized, while it was "
                    "being updated."
                )
            self._check_session_currency(currency_code, facts.currency_code)
            row = await self._repo(e.PAYMENT_SESSION).update(conn, session_id, values)
            self._emit(conn, "payment-session.updated", session_id, row["payment_collection_id"])
            await self._recompute_collection(conn, row["payment_collection_id"], locked=True)
        return PaymentSessionDTO.model_validate(row)

    async def delete_payment_session(self, id: str) -> None:
        """Deletes a session (soft: its row stays for the payments that may point at it) and asks its
        provider to drop the payment. Refused while the session has a payment that is not canceled, or
        is being authorized; the provider's part is best effort, after the deletion committed."""
        async with self.database.single() as conn:
            session = await self._repo(e.PAYMENT_SESSION).get(conn, id)
        collection_id = session["payment_collection_id"]
        async with self.database.write() as conn:
            facts = await self.ledger.lock_collection(conn, collection_id)
            current = facts.session(id)
            if current is None:
                raise self._repo(e.PAYMENT_SESSION).not_found(id)
            if facts.live_payment_of(id) is not None:
                raise NotAllowedError(f"Payment session {id} has an active payment and cannot be deleted.")
            if current.authorizing:
                raise ConflictError(f"Payment session {id} is being authorized. Retry once it finished.")
            dropped = await self._soft_delete_sessions(conn, [id], collection_id)
            await self._recompute_collection(conn, collection_id, locked=True)
        await self._drop_at_providers(dropped)

    async def record_payment_session_status(self, id: str, status: str) -> PaymentSessionDTO:
        """Records what a provider reported about a session (a webhook), without calling it back.

        An authorized session keeps its status: a late `failed` or `requires_more` changes nothing.
        """
        try:
            new_status = PaymentSessionStatus(status)
        except ValueError:
            raise InvalidDataError(f"Invalid payment session status {status!r}") from None
        sessions = self._repo(e.PAYMENT_SESSION)
        async with self.database.write() as conn:
            session = await sessions.get(conn, id, lock=True)
            if session["authorized_at"] is None and session["status"] != new_status.value:
                session = await sessions.update(conn, id, {"status": new_status.value})
                self._emit(conn, "payment-session.updated", id, session["payment_collection_id"])
        return PaymentSessionDTO.model_validate(session)

    async def retrieve_payment_session(self, id: str, config: Config = None) -> PaymentSessionDTO:
        return await self._retrieve(e.PAYMENT_SESSION, PaymentSessionDTO, id, config)

    async def payment_session_statuses(
        self, payment_collection_id: str
    ) -> list[tuple[str, PaymentSessionStatus]]:
        """The collection's live sessions as (id, status), oldest first, in one statement; a missing
        collection raises `NotFoundError`. What the checkout needs to pick the session to authorize."""
        async with self.database.single() as conn:
            found = await self.ledger.sessions_of_collection(conn, payment_collection_id)
        if found is None:
            raise self._repo(e.PAYMENT_COLLECTION).not_found(payment_collection_id)
        return [(id, PaymentSessionStatus(status)) for id, status in found]

    async def list_payment_sessions(
        self, filters: Filters | None = None, config: Config = None
    ) -> list[PaymentSessionDTO]:
        return await self._list(e.PAYMENT_SESSION, PaymentSessionDTO, filters, config)

    async def list_and_count_payment_sessions(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[PaymentSessionDTO], int]:
        return await self._list_and_count(e.PAYMENT_SESSION, PaymentSessionDTO, filters, config)
