"""The health document."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
)


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]


__all__ = ["Health"]
