"""Schemathesis hooks for `test_openapi_fuzz.py` (loaded by `st run` through `SCHEMATHESIS_HOOKS`):
what a real client does that a fuzzer does not, and the refusals a schema cannot describe.

A real client sends a fresh `Idempotency-Key` for every new request and reuses it only to retry
the same one. Schemathesis draws header values like any other string, so it sends the same key
(`0`) with different bodies, which the server rightly refuses (Stripe's rules) or answers with an
earlier request's stored response. Each schema-valid request therefore gets a key of its own.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

from paymod.domain import rules

IDEMPOTENCY_KEY = "Idempotency-Key"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers or {}
    key = next((name for name in headers if name.lower() == IDEMPOTENCY_KEY.lower()), None)
    meta = case.meta
    if key is not None and meta is not None and meta.generation.mode.is_positive:
        headers[key] = str(uuid.uuid4())


# -- refusals that depend on the data already stored, not on the request's shape ----------------------
#: A schema says which requests are well formed; it cannot say that a collection with a session may
#: not be deleted, or that a refund may not exceed what was captured. paymod answers those with
#: Medusa's 400 (`not_allowed`, or `invalid_data` for the money rules), which schemathesis counts as
#: "schema-valid request rejected" (ST202). These, and only these, are dropped: every other 400 to a
#: schema-valid request, a validation error naming a field in particular, still fails the run.
STATE_RULES = [
    # money rules, decided against the payment's captures, refunds and currency
    re.escape(rules.CAPTURE_EXCEEDS),
    re.escape(rules.REFUND_EXCEEDS),
    re.escape(rules.CAPTURE_NOT_POSITIVE),  # what remains rounds to 0 (mark-as-paid of a 0 collection)
    re.escape(rules.REFUND_NOT_POSITIVE),
    r"The payment: \S+ has been canceled\.",
    r"amount \S+ is finer than [A-Z]{3} allows",  # the payment's currency has fewer decimals
    r"Payment session currency \S+ does not match the payment collection currency",
    # a checkout without a session
    r"Payment sessions are required to complete the payment collection",
    # a refund reason named by a code several reasons share
    r"refund_reason_id: \d+ refund reasons have the code ",
    # two lists of one body that must not overlap (JSON Schema cannot relate two arrays' items)
    r"A provider cannot be both added to and removed from a region",
    # a page cursor must be one the API handed out, and pages after one are in `created_at` order
    # without an offset (JSON Schema cannot relate two parameters, nor name the strings a server made)
    r"Invalid cursor ",
    r"Pages after a cursor are ordered by created_at",
    r"A cursor and an offset cannot be combined",
]
_STATE_RULE = re.compile("|".join(f"(?:{rule})" for rule in STATE_RULES))


def is_state_rule(response: Any) -> bool:
    """A 400 whose reason is the stored data: any `not_allowed`, or one of STATE_RULES."""
    if response.status_code != 400:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if body.get("type") == "not_allowed":
        return True
    return body.get("type") == "invalid_data" and bool(_STATE_RULE.match(str(body.get("message", ""))))


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keeps every failure except a schema-valid request refused by a state rule."""
    return not (isinstance(failure, RejectedPositiveData) and is_state_rule(response))
