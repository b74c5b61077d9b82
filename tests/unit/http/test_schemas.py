"""The HTTP schemas, split by topic, against the services' DTOs they render."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from paymod.http import schemas
from paymod.services import dto

#: Each response entity and the DTO a route renders into it.
RENDERS = [
    (schemas.PaymentCollection, dto.PaymentCollectionDTO),
    (schemas.PaymentSession, dto.PaymentSessionDTO),
    (schemas.Payment, dto.PaymentDTO),
    (schemas.Capture, dto.CaptureDTO),
    (schemas.Refund, dto.RefundDTO),
    (schemas.RefundReason, dto.RefundReasonDTO),
    (schemas.PaymentProvider, dto.PaymentProviderDTO),
    (schemas.AccountHolder, dto.AccountHolderDTO),
    (schemas.PaymentMethod, dto.PaymentMethodDTO),
    (schemas.Dispute, dto.DisputeDTO),
]
#: What only the wire carries: an amount's exact string and precision, next to the number.
WIRE_ONLY = {"raw_amount"}


@pytest.mark.parametrize("entity, source", RENDERS, ids=lambda model: model.__name__)
def test_every_field_an_entity_documents_comes_from_its_dto(
    entity: type[BaseModel], source: type[BaseModel]
) -> None:
    assert set(entity.model_fields) - WIRE_ONLY <= set(source.model_fields)


@pytest.mark.parametrize(
    "entity", [e for e, _ in RENDERS if issubclass(e, schemas.Entity)], ids=lambda model: model.__name__
)
def test_an_entity_requires_only_its_id_so_fields_can_select_the_rest(entity: type[BaseModel]) -> None:
    assert [name for name, field in entity.model_fields.items() if field.is_required()] == ["id"]


def test_the_package_re_exports_every_topic_module_name() -> None:
    from paymod.http.schemas import (
        account_holders,
        base,
        disputes,
        health,
        openapi,
        payment_collections,
        payment_sessions,
        payments,
        refund_reasons,
        regions,
        webhooks,
    )

    topics = [
        base,
        payment_sessions,
        payments,
        refund_reasons,
        payment_collections,
        regions,
        account_holders,
        webhooks,
        health,
        openapi,
        disputes,
    ]
    exported = [name for module in topics for name in module.__all__]
    assert sorted(exported) == sorted(schemas.__all__)
    assert all(
        getattr(schemas, name) is getattr(module, name) for module in topics for name in module.__all__
    )
