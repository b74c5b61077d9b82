"""A region's payment providers: request body and document."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    Field,
)

from paymod.http.schemas.base import Body, Id
from paymod.http.schemas.payments import PaymentProvider


class RegionPaymentProviders(Body):
    add: list[Id] = Field(default_factory=list, max_length=100)
    remove: list[Id] = Field(default_factory=list, max_length=100)


class RegionPaymentProvidersResponse(BaseModel):
    region_id: str
    payment_providers: list[PaymentProvider]


__all__ = ["RegionPaymentProviders", "RegionPaymentProvidersResponse"]
