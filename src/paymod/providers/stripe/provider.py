"""Stripe on the official SDK: PaymentIntents, refunds, customers, SetupIntents and webhooks.

Medusa's provider (reference section 8) with these differences, on purpose:
- amounts Stripe cannot represent (ISK/UGX fractions, a third KWD decimal other than 0) are refused
  with `InvalidDataError` before any call (amounts.py);
- captures send `amount_to_capture` (and `final_capture: false` while multicapture lets more follow)
  and answer what stays capturable (`CapturePaymentOutput.remaining_capturable`);
- refunds send the reason (Stripe's own when it is one of them) and always record it, and paymod's
  refund id, in metadata;
- every mutating call carries an idempotency key derived from `context.idempotency_key`; a resumed
  call (`context.resumed`) first looks at Stripe for what the lost call may have done (the refund with
  paymod's id, the capture's effect on the intent), since Stripe prunes keys after 24 hours;
- Connect: the `stripe_account` option or a session's `stripe_account` goes on every call of that
  payment as `Stripe-Account`;
- a `card_error` that carries a PaymentIntent gives session status `error`, the decline code in `data`;
- authorization records Radar's `risk_level` / `risk_score` and the capture deadline `capture_before`;
- rate limits are retried with backoff (connection errors, 409 and 5xx by the SDK), then raise
  `RetryableProviderError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import stripe

from paymod.providers.stripe.client import _PAGE as _PAGE
from paymod.providers.stripe.client import Data as Data
from paymod.providers.stripe.client import FormHTTPXClient as FormHTTPXClient
from paymod.providers.stripe.client import T as T
from paymod.providers.stripe.client import _customer_id as _customer_id
from paymod.providers.stripe.client import _dump as _dump
from paymod.providers.stripe.client import _setting_key as _setting_key
from paymod.providers.stripe.client import _units as _units
from paymod.providers.stripe.client import _with_charge_facts as _with_charge_facts
from paymod.providers.stripe.client import log
from paymod.providers.stripe.customers import StripeCustomers
from paymod.providers.stripe.customers import _customer_params as _customer_params
from paymod.providers.stripe.mapping import REFUND_ID_KEY as REFUND_ID_KEY
from paymod.providers.stripe.options import StripeOptions
from paymod.providers.stripe.payments import _INTENT_MONEY_FIELDS as _INTENT_MONEY_FIELDS
from paymod.providers.stripe.payments import _METADATA_KEY_LIMIT as _METADATA_KEY_LIMIT
from paymod.providers.stripe.payments import _METADATA_LIMIT as _METADATA_LIMIT
from paymod.providers.stripe.payments import _PASSTHROUGH as _PASSTHROUGH
from paymod.providers.stripe.payments import STRIPE_REFUND_REASONS as STRIPE_REFUND_REASONS
from paymod.providers.stripe.payments import StripePayments
from paymod.providers.stripe.payments import _capture_marker as _capture_marker
from paymod.providers.stripe.payments import _in_major_units as _in_major_units
from paymod.providers.stripe.payments import _major as _major
from paymod.providers.stripe.payments import _merge as _merge
from paymod.providers.stripe.payments import _setting as _setting
from paymod.providers.stripe.webhooks import WEBHOOK_TOLERANCE as WEBHOOK_TOLERANCE
from paymod.providers.stripe.webhooks import StripeWebhooks

# The names above marked `as` stay importable from this module, where they lived before the split.

_warned_missing_secret = False


class StripeProvider(StripePayments, StripeCustomers, StripeWebhooks):
    """Cards and every method Stripe offers through PaymentIntents (identifier `stripe`)."""

    identifier = "stripe"
    #: Forced by the single-method variants (Medusa's `paymentIntentOptions`); session data wins.
    payment_method_types: ClassVar[tuple[str, ...] | None] = None
    capture_method: ClassVar[str | None] = None

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.settings = StripeOptions.parse(self.options)
        self._client: stripe.StripeClient | None = None
        self._http_client: stripe.HTTPClient | None = None
        global _warned_missing_secret
        if self.settings.webhook_secret is None and not _warned_missing_secret:
            _warned_missing_secret = True
            log.warning("Stripe option `webhook_secret` is not set: Stripe webhooks will be refused")

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        StripeOptions.parse(options)


class BancontactProvider(StripeProvider):
    identifier = "stripe-bancontact"
    payment_method_types = ("bancontact",)
    capture_method = "automatic"


class BlikProvider(StripeProvider):
    identifier = "stripe-blik"
    payment_method_types = ("blik",)
    capture_method = "automatic"


class IdealProvider(StripeProvider):
    identifier = "stripe-ideal"
    payment_method_types = ("ideal",)
    capture_method = "automatic"


class Przelewy24Provider(StripeProvider):
    identifier = "stripe-przelewy24"
    payment_method_types = ("p24",)
    capture_method = "automatic"


class PromptpayProvider(StripeProvider):
    identifier = "stripe-promptpay"
    payment_method_types = ("promptpay",)
    capture_method = "automatic"


class OxxoProvider(StripeProvider):
    identifier = "stripe-oxxo"
    payment_method_types = ("oxxo",)
    capture_method = "automatic"


__all__ = [
    "BancontactProvider",
    "BlikProvider",
    "IdealProvider",
    "OxxoProvider",
    "PromptpayProvider",
    "Przelewy24Provider",
    "StripeProvider",
]
