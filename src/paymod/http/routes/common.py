"""What the routers share: dependencies, documents, filters and the error statuses they document."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel

from paymod.http import errors
from paymod.http.fields import Resource, Selection, parse_fields, project, relation_paths
from paymod.http.idempotency import HEADER, MAX_KEY_LENGTH
from paymod.http.routing import PaymodRoute, PaymodRouter
from paymod.http.state import module
from paymod.services.payment_module import PaymentModule

ModuleDep = Annotated[PaymentModule, Depends(module)]


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            description="Makes the request safe to retry: the first response is stored for 24 hours and "
            "replayed (with `Idempotent-Replayed: true`) for a retry with the same key and parameters.",
        ),
    ] = None,
) -> str | None:
    return key


def router(prefix: str, tag: str) -> APIRouter:
    return PaymodRouter(prefix=prefix, tags=[tag], route_class=PaymodRoute)


# Error statuses each kind of route documents (see paymod.http.errors for what they mean).
READ = (400, 401)
READ_ONE = (400, 401, 404)
WRITE = (400, 401, 404, 409, 413)
PROVIDER_WRITE = (*WRITE, 502, 503)
PROVIDER_READ = (*READ_ONE, 502, 503)


def post_options(response_model: type[BaseModel], statuses: tuple[int, ...]) -> dict[str, Any]:
    return {
        "response_model": response_model,
        "responses": errors.error_responses(statuses),
        "dependencies": [Depends(idempotency_key)],
    }


def get_options(response_model: type[BaseModel], statuses: tuple[int, ...]) -> dict[str, Any]:
    return {"response_model": response_model, "responses": errors.error_responses(statuses)}


def document(selection: Selection, dto: BaseModel) -> dict[str, Any]:
    return project(selection, dto.model_dump(mode="python"))


def selection_config(resource: Resource, fields: str | None) -> tuple[Selection, dict[str, Any]]:
    selection = parse_fields(resource, fields)
    return selection, {"relations": relation_paths(selection)}


def utc(moment: datetime) -> datetime:
    """A query's datetime without a zone is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def range_filter(
    gte: datetime | None = None,
    lte: datetime | None = None,
    gt: datetime | None = None,
    lt: datetime | None = None,
) -> dict[str, datetime] | None:
    ops = {"$gte": gte, "$lte": lte, "$gt": gt, "$lt": lt}
    found = {op: utc(value) for op, value in ops.items() if value is not None}
    return found or None


def search_term(module: PaymentModule, q: str) -> str:
    """`q` as given: the repository matches it literally (escaping LIKE's wildcards) on both databases."""
    return q


def filters_of(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != []}


def merge(*parts: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for part in parts:
        result.update(part)
    return result
