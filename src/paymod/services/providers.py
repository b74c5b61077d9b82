"""Payment providers: registration (sync with the configuration), region links, webhook verification."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update

from paymod.domain.errors import (
    InvalidDataError,
    NotFoundError,
)
from paymod.domain.money import AmountError, to_amount
from paymod.domain.statuses import PaymentAction
from paymod.persistence import entities as e
from paymod.persistence import tables as t
from paymod.persistence.repository import utc_now
from paymod.providers.base import (
    WebhookPayload,
)
from paymod.services.core import Config, Filters, ModuleCore
from paymod.services.disputes import webhook_dispute
from paymod.services.dto import (
    PaymentProviderDTO,
    WebhookActionAndData,
    WebhookActionData,
    WebhookRefund,
)
from paymod.services.inputs import (
    as_mapping,
    optional_object,
    webhook_text,
)


class ProvidersMixin(ModuleCore):
    """Providers, their region links and what their webhooks ask for."""

    async def _sync_providers(self) -> None:
        """Registers configured providers as enabled and disables those no longer configured."""
        ids = self.providers.ids
        now = utc_now()
        table = t.payment_provider
        async with self.database.write() as conn:
            existing = set((await conn.execute(select(table.c.id))).scalars())
            new = [
                {"id": i, "is_enabled": True, "created_at": now, "updated_at": now}
                for i in ids
                if i not in existing
            ]
            if new:
                await conn.execute(insert(table), new)
            await conn.execute(
                update(table)
                .where(table.c.id.in_(ids), table.c.is_enabled.is_(False))
                .values(is_enabled=True, updated_at=now)
            )
            await conn.execute(
                update(table)
                .where(table.c.id.not_in(ids), table.c.is_enabled.is_(True))
                .values(is_enabled=False, updated_at=now)
            )

    async def retrieve_payment_provider(self, id: str, config: Config = None) -> PaymentProviderDTO:
        return await self._retrieve(e.PAYMENT_PROVIDER, PaymentProviderDTO, id, config)

    async def list_payment_providers(
        self, filters: Filters | None = None, config: Config = None
    ) -> list[PaymentProviderDTO]:
        return (await self.list_and_count_payment_providers(filters, config))[0]

    async def list_and_count_payment_providers(
        self, filters: Filters | None = None, config: Config = None
    ) -> tuple[list[PaymentProviderDTO], int]:
        """Lists providers; a `region_id` filter keeps those enabled for that region."""
        filters = dict(filters or {})
        region_id = filters.pop("region_id", None)
        if region_id is not None:
            link = t.region_payment_provider
            region_ids = list(region_id) if isinstance(region_id, list | tuple) else [region_id]
            async with self.database.read() as conn:
                linked = (
                    await conn.execute(
                        select(link.c.payment_provider_id).where(link.c.region_id.in_(region_ids))
                    )
                ).scalars()
                linked_ids = sorted(set(linked))
            filters = {"$and": [filters, {"id": linked_ids}]} if filters else {"id": linked_ids}
        return await self._list_and_count(e.PAYMENT_PROVIDER, PaymentProviderDTO, filters, config)

    async def add_region_payment_providers(self, region_id: str, provider_ids: Sequence[str]) -> list[str]:
        """Enables providers for a region (`region_payment_provider`); returns the region's providers."""
        if not isinstance(region_id, str) or not region_id:
            raise InvalidDataError("region_id must be a non-empty string")
        link = t.region_payment_provider
        async with self.database.write() as conn:
            known = set(
                (
                    await conn.execute(
                        select(t.payment_provider.c.id).where(t.payment_provider.c.id.in_(provider_ids))
                    )
                ).scalars()
            )
            missing = [p for p in provider_ids if p not in known]
            if missing:
                raise NotFoundError(f"PaymentProvider with id: {', '.join(missing)} was not found")
            present = set(
                (
                    await conn.execute(
                        select(link.c.payment_provider_id).where(link.c.region_id == region_id)
                    )
                ).scalars()
            )
            new = [p for p in dict.fromkeys(provider_ids) if p not in present]
            if new:
                now = utc_now()
                await conn.execute(
                    insert(link),
                    [{"region_id": region_id, "payment_provider_id": p, "created_at": now} for p in new],
                )
            return sorted(present | set(new))

    async def remove_region_payment_providers(self, region_id: str, provider_ids: Sequence[str]) -> list[str]:
        link = t.region_payment_provider
        async with self.database.write() as conn:
            await conn.execute(
                link.delete().where(
                    link.c.region_id == region_id, link.c.payment_provider_id.in_(provider_ids)
                )
            )
            rows = await conn.execute(select(link.c.payment_provider_id).where(link.c.region_id == region_id))
            return sorted(rows.scalars())

    # -- webhooks -------------------------------------------------------------------------
    async def get_webhook_action_and_data(self, data: Mapping[str, Any]) -> WebhookActionAndData:
        """Verifies a provider's webhook and says what it asks for: `{action, data: {session_id, amount}}`."""
        data = as_mapping(data, "webhook")
        provider = data.get("provider")
        if not isinstance(provider, str) or not provider:
            raise InvalidDataError("provider must be a non-empty string")
        payload = optional_object(data, "payload") or {}
        raw = payload.get("raw_data", payload.get("rawData", b""))
        if isinstance(raw, str):
            raw = raw.encode()
        if not isinstance(raw, bytes | bytearray):
            raise InvalidDataError("payload.raw_data must be bytes")
        provider_id = self.providers.resolve_webhook_provider(provider)
        result = await self.provider(provider_id).get_webhook_action_and_data(
            WebhookPayload(
                data=payload.get("data") or {},
                raw_data=bytes(raw),
                headers={str(k): str(v) for k, v in (payload.get("headers") or {}).items()},
            )
        )
        # A provider's signature says who sent the event, not that its fields are sane: a signed event
        # with an amount of NaN or an id of 3 KB is refused here, before anything is stored.
        session_id = webhook_text(result.session_id, "session id")
        event_id = webhook_text(result.event_id, "event id")
        amount = None
        if result.amount is not None:
            try:
                amount = to_amount(result.amount, "amount")
            except AmountError as exc:
                raise InvalidDataError(f"The webhook's {exc}.", code="invalid_webhook") from None
        remaining = None
        if result.remaining_capturable is not None:
            try:
                remaining = to_amount(result.remaining_capturable, "remaining capturable amount")
            except AmountError as exc:
                raise InvalidDataError(f"The webhook's {exc}.", code="invalid_webhook") from None
        refunds = [
            WebhookRefund(
                id=webhook_text(refund.id, "refund id") or "",
                amount=None if refund.amount is None else _webhook_amount(refund.amount, "refund amount"),
                paymod_refund_id=webhook_text(refund.paymod_refund_id, "refund id"),
                failure_reason=webhook_text(refund.failure_reason, "refund failure reason"),
            )
            for refund in result.refunds
        ]
        if any(not refund.id for refund in refunds):
            raise InvalidDataError("The webhook names a refund without an id.", code="invalid_webhook")
        return WebhookActionAndData(
            action=PaymentAction(result.action),
            data=(
                WebhookActionData(
                    session_id=session_id,
                    amount=amount,
                    remaining_capturable=remaining,
                    refunds=refunds,
                    dispute=None if result.dispute is None else webhook_dispute(result.dispute),
                )
                if session_id
                else None
            ),
            event_id=event_id,
        )


def _webhook_amount(value: object, name: str) -> Decimal:
    try:
        return to_amount(value, name)
    except AmountError as exc:
        raise InvalidDataError(f"The webhook's {exc}.", code="invalid_webhook") from None
