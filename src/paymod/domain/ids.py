"""Entity ids: Medusa's prefixes followed by a ULID."""

from __future__ import annotations

from ulid import ULID

PAYMENT_COLLECTION = "pay_col"
PAYMENT_SESSION = "payses"
PAYMENT = "pay"
CAPTURE = "capt"
REFUND = "ref"
REFUND_REASON = "refr"
ACCOUNT_HOLDER = "acchld"
DISPUTE = "disp"


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"
