"""JSON that keeps money exact: Decimals go out as number literals and come in without a float.

The standard library would turn an amount into a float on the way in (`json.loads`) and refuse a
Decimal on the way out; pydantic would emit it as a string. Medusa's clients expect numbers.

It sits below the HTTP layer and the CLI, which both speak it (`paymod.http.json.JSONResponse`
renders with it; `paymod payments list --json` prints with it), and imports neither.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from pydantic import BaseModel

from paymod.domain.errors import UnsafeInput as UnsafeInput
from paymod.domain.money import exact_text

MAX_DEPTH = 32
#: The largest number free-form JSON keeps (a double's): metadata numbers are stored as doubles.
MAX_JSON_NUMBER = sys.float_info.max


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(body: bytes | str) -> Any:
    """Parses JSON with exact decimals; NaN and Infinity are refused."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError:
        raise json.JSONDecodeError("JSON is nested too deeply", text, 0) from None
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(exc), text, 0) from None
    check_safe(value)
    return value


def check_text(value: str, where: str) -> None:
    if "\x00" in value:
        raise UnsafeInput(f"{where} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeInput(f"{where} must be valid Unicode text") from None


def check_safe(value: Any, where: str = "body", depth: int = 0) -> None:
    """Refuses what PostgreSQL would reject with an error (a 500), so bad input gets a 400."""
    if depth > MAX_DEPTH:
        raise UnsafeInput(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(str(key), where)
            check_safe(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_safe(item, f"{where}[{index}]", depth + 1)


def plain(value: Any) -> Any:
    """Free-form JSON (metadata, data) keeps its floats as floats, as a JSON store would."""
    if isinstance(value, Decimal):
        number = float(value)
        if not math.isfinite(number) or abs(value) > Decimal(MAX_JSON_NUMBER):
            raise UnsafeInput(f"{value} is out of range")
        return number
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_JSON_NUMBER:
        raise UnsafeInput(f"{value} is out of range")
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# What `json.dumps(text, ensure_ascii=False)` and `json.dumps(text)` return for a string, without
# building an encoder per call (the standard library's own C functions; the output is the same).
_string: Callable[[str], str] = encode_basestring
_ascii_string: Callable[[str], str] = encode_basestring_ascii


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Enum):
        _encode(value.value, out)
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        # Medusa's numbers carry no trailing zeros: 49.90 goes out as 49.9 (raw_amount keeps the value).
        out.append(exact_text(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a JSON number")
        out.append(repr(value))
    elif isinstance(value, datetime | date):
        out.append(_ascii_string(value.isoformat()))
    elif isinstance(value, BaseModel):
        _encode(value.model_dump(mode="python"), out)
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if index:
                out.append(",")
            out.append(_string(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def canonical(value: Any) -> bytes:
    """One byte string per JSON value whatever the key order or spacing (for request fingerprints)."""

    def sort(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: sort(v[k]) for k in sorted(v)}
        if isinstance(v, list):
            return [sort(i) for i in v]
        return v

    return dumps(sort(value))
