"""Where flow values cross the store boundary, in one place: typed inside the process (frozen
dataclasses, `Decimal`), JSON-ready in the store (amounts as exact decimal strings).

A step declares the type of its output and a workflow the type of its input; a value of no declared
type is stored as it is (it must be JSON-ready already), as flows written against dicts expect.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python


def dump(value: Any) -> Any:
    """The JSON-ready form of a flow value (dataclasses to objects, Decimal to its exact string)."""
    return to_jsonable_python(value)


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def load(kind: Any, value: Any) -> Any:
    """The typed value back from its stored form; `kind=None`: as stored."""
    if kind is None or value is None:
        return value
    return _adapter(kind).validate_python(value)


def fingerprint(stored_input: Any) -> str:
    """What makes two runs of one key the same request: a hash of the stored input."""
    return hashlib.sha256(json.dumps(stored_input, sort_keys=True, default=str).encode()).hexdigest()
