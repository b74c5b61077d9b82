"""Log lines an operator can use: one format for the whole process, secrets masked.

paymod's modules log through the standard library (`logging.getLogger("paymod...")`, fields in
`extra=`), as a library should: an application that embeds `PaymentModule` keeps its own logging.
`paymod serve` and `paymod worker` call `configure_logging`, which renders every record of the process
(paymod's, uvicorn's, the libraries') with structlog: JSON lines when stderr is not a terminal (a log
shipper reads them), readable colored lines when it is. Each line carries the request id of the
request (or stored provider event) it belongs to.

Whatever a line holds goes through `redact` last: values under sensitive names (authorization,
secrets, keys, tokens, signatures, card fields) are masked, and so are strings that look like a
credential (`Bearer ...`, `sk_...`, `whsec_...`) or a card number, wherever they appear.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from paymod.observability.context import current_request_id

MASK = "[redacted]"
CARD_MASK = "[redacted card number]"

# Names (lowercase, `-` read as `_`) whose values are never logged, wherever they appear in a line.
_SENSITIVE_NAMES = frozenset(
    {
        "card",
        "number",
        "cvc",
        "cvv",
        "exp_month",
        "exp_year",
        "pan",
        "iban",
        "account_number",
        "routing_number",
        "key",
        "cookie",
        "set_cookie",
    }
)
_SENSITIVE_PARTS = (
    "authorization",
    "secret",
    "password",
    "passwd",
    "token",
    "api_key",
    "apikey",
    "signature",
    "credential",
    "card_number",
    "private",
)
# A credential inside free text: an Authorization value, an API or ephemeral key, a webhook secret.
_CREDENTIAL = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}"
    r"|\b(?:sk|pk|rk|ek|whsec)_[A-Za-z0-9_-]{6,}"
)
# 13 to 19 digits, spaces or dashes between groups allowed, standing alone: not part of a longer
# number, a decimal amount or an id (ULIDs mix letters and digits).
_CARD_CANDIDATE = re.compile(r"(?<![\w.])\d(?:[ -]?\d){12,18}(?![\w.])")

_HANDLER_MARK = "_paymod_handler"


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return CARD_MASK if _luhn(digits) else match.group(0)


def _credential(match: re.Match[str]) -> str:
    scheme = match.group(1)
    if scheme:
        return f"{scheme} {MASK}"
    return match.group(0).split("_", 1)[0] + "_" + MASK


def redact_text(text: str) -> str:
    """`text` with credentials and card numbers masked."""
    return _CARD_CANDIDATE.sub(_card, _CREDENTIAL.sub(_credential, text))


def is_sensitive_name(name: str) -> bool:
    normalized = name.lower().replace("-", "_")
    return normalized in _SENSITIVE_NAMES or any(part in normalized for part in _SENSITIVE_PARTS)


def redact_value(value: Any) -> Any:
    """A copy of `value` safe to log: sensitive names masked in mappings, text scrubbed."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: (MASK if isinstance(key, str) and is_sensitive_name(key) else redact_value(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("utf-8", "replace"))
    return value


def redact(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last one before rendering."""
    for key, value in list(event_dict.items()):
        if key.startswith("_"):
            continue
        if is_sensitive_name(key):
            event_dict[key] = MASK
        else:
            event_dict[key] = redact_value(value)
    return event_dict


def add_request_id(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the current request id, unless the line names one itself."""
    request_id = current_request_id()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


_FIRST = ("timestamp", "level", "logger", "message", "request_id")


def _readable_order(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """The fields a reader scans first, first; uvicorn's colored copy of its message dropped."""
    event_dict.pop("color_message", None)
    ordered = {key: event_dict.pop(key) for key in _FIRST if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}")
    return value


def configure_logging(
    level: str | int = "info", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Renders every log record of this process on `stream` (stderr): JSON lines unless `json` is
    false or (when it is None) the stream is a terminal. Calling it again replaces what it set up."""
    output = stream if stream is not None else sys.stderr
    as_json = (not output.isatty()) if json is None else json
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        timestamper,
    ]
    rendering: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if as_json:
        rendering += [
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.EventRenamer("message"),
            _readable_order,
            structlog.processors.JSONRenderer(default=str),
        ]
    else:
        rendering += [
            redact,
            lambda logger, method, event: {k: v for k, v in event.items() if k != "color_message"},
            structlog.dev.ConsoleRenderer(colors=output.isatty()),
        ]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=rendering)
    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(_level(level))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


__all__ = [
    "CARD_MASK",
    "MASK",
    "add_request_id",
    "configure_logging",
    "redact",
    "redact_text",
    "redact_value",
]
