"""Medusa's `fields`, `limit`, `offset` and `order` query parameters.

`fields` lists what to return: `id,amount` replaces the default fields; `+captures` adds to them and
`-metadata` removes; `*payments` includes a relation with its default fields and `payments.amount`
only some of them. `id` is always returned.

Both `fields` and `order` are comma-separated tokens with optional spaces around each; the OpenAPI
document carries each resource's grammar as a pattern (`fields_pattern`, `order_pattern`), and the
parsers accept exactly what the pattern matches.
"""

# No `from __future__ import annotations`: `page_params` builds its parameters from its argument,
# and FastAPI reads annotations that are objects, not strings naming a local.
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Annotated, Any

from fastapi import Query

from paymod.domain.errors import InvalidDataError
from paymod.http import schemas as s

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000


@dataclass(frozen=True, eq=False)
class Resource:
    """An entity as the API shows it: its fields, default fields and relations (compared by identity:
    each is a module constant)."""

    name: str
    fields: tuple[str, ...]
    defaults: tuple[str, ...] | None = None  # None: every field
    relations: Mapping[str, "Resource"] = field(default_factory=dict)
    default_relations: tuple[str, ...] = ()
    orderable: tuple[str, ...] = ("created_at", "updated_at", "id")

    def default_fields(self) -> set[str]:
        return set(self._default_fields)

    @cached_property
    def _default_fields(self) -> frozenset[str]:
        # Computed once: every answer without `fields` starts from it (a copy, as selections change).
        return frozenset(self.fields if self.defaults is None else self.defaults) | {"id"}


@dataclass
class Selection:
    fields: set[str]
    relations: dict[str, "Selection"] = field(default_factory=dict)


def _scalars(model: type[s.Entity], *relations: str) -> tuple[str, ...]:
    return tuple(name for name in model.model_fields if name not in relations)


PAYMENT_PROVIDER = Resource("payment_provider", ("id", "is_enabled"), orderable=("id",))
REFUND_REASON = Resource(
    "refund_reason", _scalars(s.RefundReason), orderable=("created_at", "updated_at", "id", "label", "code")
)
CAPTURE = Resource("capture", _scalars(s.Capture))
REFUND = Resource(
    "refund",
    _scalars(s.Refund, "refund_reason"),
    relations={"refund_reason": REFUND_REASON},
    default_relations=("refund_reason",),
)
PAYMENT_SESSION = Resource("payment_session", _scalars(s.PaymentSession))
DISPUTE = Resource(
    "dispute",
    _scalars(s.Dispute),
    orderable=("created_at", "updated_at", "id", "status", "evidence_due_by", "closed_at"),
)
PAYMENT = Resource(
    "payment",
    _scalars(s.Payment, "captures", "refunds", "disputes", "payment_session"),
    relations={
        "captures": CAPTURE,
        "refunds": REFUND,
        "disputes": DISPUTE,
        "payment_session": PAYMENT_SESSION,
    },
    default_relations=("captures", "refunds", "disputes"),
    orderable=("created_at", "updated_at", "id", "captured_at", "canceled_at"),
)
PAYMENT_COLLECTION = Resource(
    "payment_collection",
    _scalars(s.PaymentCollection, "payment_sessions", "payments", "payment_providers"),
    relations={
        "payment_sessions": PAYMENT_SESSION,
        "payments": PAYMENT,
        "payment_providers": PAYMENT_PROVIDER,
    },
    default_relations=("payment_sessions", "payments"),
    orderable=("created_at", "updated_at", "id", "status", "completed_at"),
)
ACCOUNT_HOLDER = Resource("account_holder", _scalars(s.AccountHolder))

# What a shopper's client sees: no metadata, no provider-side context.
STORE_PAYMENT_SESSION = Resource(
    "payment_session", ("id", "amount", "raw_amount", "currency_code", "provider_id", "data", "status")
)
STORE_PAYMENT_COLLECTION = Resource(
    "payment_collection",
    ("id", "amount", "raw_amount", "currency_code", "status"),
    relations={"payment_sessions": STORE_PAYMENT_SESSION, "payment_providers": PAYMENT_PROVIDER},
    default_relations=("payment_sessions",),
)


def default_selection(resource: Resource) -> Selection:
    return Selection(
        fields=resource.default_fields(),
        relations={r: default_selection(resource.relations[r]) for r in resource.default_relations},
    )


def _names(resource: Resource) -> Iterator[str]:
    """Every token body `_apply` accepts for a resource: its fields, its relations (`payments`,
    `*payments`) and their tokens after a dot (`payments.amount`, `payments.*captures`)."""
    yield from resource.fields
    for name, target in resource.relations.items():
        yield name
        yield f"*{name}"
        for nested in _names(target):
            yield f"{name}.{nested}"


def _list_pattern(token: str) -> str:
    """Comma-separated tokens, each optional and with spaces around it."""
    return f"^ *(?:{token})? *(?:, *(?:{token})? *)*$"


def _alternatives(names: Sequence[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(set(names), key=lambda n: (-len(n), n)))


@cache
def _field_token(resource: Resource) -> re.Pattern[str]:
    return re.compile(f"[+-]?(?:{_alternatives(list(_names(resource)))})")


@cache
def fields_pattern(resource: Resource) -> str:
    """The `fields` values this resource accepts, as an ECMA-262 (and Python) regular expression."""
    return _list_pattern(_field_token(resource).pattern)


@cache
def _order_token(resource: Resource) -> re.Pattern[str]:
    return re.compile(f"[+-]?(?:{_alternatives(resource.orderable)})")


@cache
def order_pattern(resource: Resource) -> str:
    """The `order` values this resource accepts: `field` ascending, `-field` descending."""
    return _list_pattern(_order_token(resource).pattern)


def _tokens(value: str | None) -> list[str]:
    return [t for t in (t.strip(" ") for t in (value or "").split(",")) if t]


def _apply(resource: Resource, selection: Selection, token: str, *, remove: bool) -> None:
    head, dot, rest = token.partition(".")
    if head.startswith("*"):
        head = head[1:]
    if head in resource.relations:
        if remove:
            selection.relations.pop(head, None)
            return
        target = resource.relations[head]
        if not dot:
            selection.relations[head] = default_selection(target)
            return
        nested = selection.relations.setdefault(head, Selection(fields={"id"}))
        _apply(target, nested, rest, remove=False)
        return
    if remove:
        if head != "id":
            selection.fields.discard(head)
    else:
        selection.fields.add(head)


def parse_fields(resource: Resource, value: str | None) -> Selection:
    tokens = _tokens(value)
    pattern = _field_token(resource)
    for token in tokens:
        if not pattern.fullmatch(token):
            raise InvalidDataError(f"Unknown field {token!r} for {resource.name}")
    replace = any(t[0] not in "+-" for t in tokens)
    selection = Selection(fields={"id"}) if replace else default_selection(resource)
    for token in tokens:
        if token[0] in "+-":
            _apply(resource, selection, token[1:], remove=token[0] == "-")
        else:
            _apply(resource, selection, token, remove=False)
    return selection


def relation_paths(selection: Selection, prefix: str = "") -> list[str]:
    paths = []
    for name, nested in selection.relations.items():
        path = f"{prefix}{name}"
        paths.append(path)
        paths.extend(relation_paths(nested, f"{path}."))
    return paths


def project(selection: Selection, document: Mapping[str, Any]) -> dict[str, Any]:
    result = {"id": document.get("id")} if "id" in document else {}
    result.update((k, v) for k, v in document.items() if k in selection.fields)
    for name, nested in selection.relations.items():
        value = document.get(name)
        if isinstance(value, list):
            result[name] = [project(nested, item) for item in value]
        elif isinstance(value, Mapping):
            result[name] = project(nested, value)
        else:
            result[name] = value
    return result


def parse_order(resource: Resource, value: str | None) -> dict[str, str]:
    order: dict[str, str] = {}
    pattern = _order_token(resource)
    for token in _tokens(value):
        name, direction = (token[1:], "DESC") if token[0] == "-" else (token.removeprefix("+"), "ASC")
        if not pattern.fullmatch(token):
            raise InvalidDataError(
                f"Cannot order {resource.name} by {name!r}; use one of {', '.join(resource.orderable)}"
            )
        order[name] = direction
    return order


@dataclass(frozen=True)
class Page:
    fields: str | None
    limit: int
    offset: int
    order: str | None

    def config(self, resource: Resource, selection: Selection) -> dict[str, Any]:
        return {
            "skip": self.offset,
            "take": self.limit,
            "order": parse_order(resource, self.order),
            "relations": relation_paths(selection),
        }


MAX_FIELDS_LENGTH = 2000
MAX_ORDER_LENGTH = 500


def fields_query(resource: Resource) -> Any:
    """The `fields` parameter of a route returning `resource`; its pattern is documented, and
    `parse_fields` enforces it with a message naming the unknown token."""
    return Query(
        description="Fields to return: `id,amount` replaces the defaults, `+field` adds, `-field` "
        "removes, `*relation` includes a relation, `relation.field` some of its fields",
        max_length=MAX_FIELDS_LENGTH,
        json_schema_extra={"pattern": fields_pattern(resource)},
    )


def order_query(resource: Resource) -> Any:
    return Query(
        description="`field` ascending, `-field` descending; comma-separated",
        max_length=MAX_ORDER_LENGTH,
        json_schema_extra={"pattern": order_pattern(resource)},
    )


def page_params(default_limit: int, resource: Resource) -> Any:
    """A dependency reading `fields`, `limit`, `offset` and `order` of a list of `resource`."""

    async def params(
        fields: Annotated[str | None, fields_query(resource)] = None,
        limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = default_limit,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        order: Annotated[str | None, order_query(resource)] = None,
    ) -> Page:
        return Page(fields=fields, limit=limit, offset=offset, order=order)

    return params


def listing(plural: str, items: Sequence[dict[str, Any]], count: int | None, page: Page) -> dict[str, Any]:
    return {plural: list(items), "count": count, "offset": page.offset, "limit": page.limit}
