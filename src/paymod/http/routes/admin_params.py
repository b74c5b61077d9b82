"""Query parameters the admin routes share: ids, creation-date ranges, pages and fields per resource."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from paymod.http import fields as f
from paymod.http import schemas as s
from paymod.http.fields import Page, fields_query, page_params
from paymod.http.routes.common import range_filter

Ids = Annotated[list[str] | None, Query(description="One or more ids")]


async def created_at(
    gte: Annotated[s.DateTime | None, Query(alias="created_at[$gte]")] = None,
    lte: Annotated[s.DateTime | None, Query(alias="created_at[$lte]")] = None,
) -> dict[str, Any] | None:
    return range_filter(gte=gte, lte=lte)


CreatedAt = Annotated[dict[str, Any] | None, Depends(created_at)]
CollectionPage = Annotated[Page, Depends(page_params(20, f.PAYMENT_COLLECTION))]
PaymentPage = Annotated[Page, Depends(page_params(20, f.PAYMENT))]
ProviderPage = Annotated[Page, Depends(page_params(20, f.PAYMENT_PROVIDER))]
RefundReasonPage = Annotated[Page, Depends(page_params(15, f.REFUND_REASON))]
AccountHolderPage = Annotated[Page, Depends(page_params(20, f.ACCOUNT_HOLDER))]
DisputePage = Annotated[Page, Depends(page_params(20, f.DISPUTE))]
CollectionFields = Annotated[str | None, fields_query(f.PAYMENT_COLLECTION)]
PaymentFields = Annotated[str | None, fields_query(f.PAYMENT)]
RefundReasonFields = Annotated[str | None, fields_query(f.REFUND_REASON)]
AccountHolderFields = Annotated[str | None, fields_query(f.ACCOUNT_HOLDER)]
DisputeFields = Annotated[str | None, fields_query(f.DISPUTE)]
