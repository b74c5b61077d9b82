"""Admin routes for a region's payment providers (Medusa's region links)."""

from __future__ import annotations

from paymod.domain.errors import InvalidDataError
from paymod.http import fields as f
from paymod.http import schemas as s
from paymod.http.auth import Admin
from paymod.http.fields import listing
from paymod.http.json import JSONResponse
from paymod.http.routes.admin_params import ProviderPage
from paymod.http.routes.common import (
    READ,
    WRITE,
    ModuleDep,
    document,
    get_options,
    post_options,
    router,
)

admin = router("/admin", "admin")


@admin.get("/regions/{id}/payment-providers", **get_options(s.PaymentProviderList, READ))
async def list_region_payment_providers(
    id: str, actor: Admin, module: ModuleDep, page: ProviderPage
) -> JSONResponse:
    """The providers enabled in a region."""
    selection = f.parse_fields(f.PAYMENT_PROVIDER, page.fields)
    items, count = await module.list_and_count_payment_providers(
        {"region_id": id}, page.config(f.PAYMENT_PROVIDER, selection)
    )
    return JSONResponse(listing("payment_providers", [document(selection, p) for p in items], count, page))


@admin.post("/regions/{id}/payment-providers", **post_options(s.RegionPaymentProvidersResponse, WRITE))
async def link_region_payment_providers(
    id: str, body: s.RegionPaymentProviders, actor: Admin, module: ModuleDep
) -> JSONResponse:
    """Enables (`add`) and disables (`remove`) providers in a region."""
    if set(body.add) & set(body.remove):
        raise InvalidDataError("A provider cannot be both added to and removed from a region")
    if body.add:
        await module.add_region_payment_providers(id, body.add)
    if body.remove:
        await module.remove_region_payment_providers(id, body.remove)
    providers = await module.list_payment_providers({"region_id": id})
    selection = f.parse_fields(f.PAYMENT_PROVIDER, None)
    return JSONResponse({"region_id": id, "payment_providers": [document(selection, p) for p in providers]})


__all__ = ["admin"]
