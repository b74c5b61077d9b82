"""PayPal on PayPal's official server SDK (`paypal-server-sdk`): Orders v2 with the buyer's approval,
authorizations, captures, refunds, voids, disputes, and verified webhooks (identifier `paypal`)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import httpx

from paymod.providers.paypal.options import PayPalOptions
from paymod.providers.paypal.payments import PayPalPayments
from paymod.providers.paypal.webhooks import PayPalWebhooks


class PayPalProvider(PayPalPayments, PayPalWebhooks):
    """PayPal Checkout (identifier `paypal`, configured as `pp_paypal_{id}`).

    Saved payment methods (PayPal's vault) are not offered: the account-holder and payment-method
    methods raise NotImplementedError.
    """

    identifier = "paypal"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.settings = PayPalOptions.parse(self.options)
        self._client: Any = None
        self._executor = None
        self._token: Any = None
        self._lock = threading.Lock()
        self._http: httpx.AsyncClient | None = None

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        PayPalOptions.parse(options)


__all__ = ["PayPalProvider"]
