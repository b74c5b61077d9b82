"""Stripe payment providers on the official `stripe` SDK (the only place paymod imports it).

Configure with `{"resolve": "paymod.providers.stripe", "id": "stripe", "options": {"api_key": ...}}`:
that registers `pp_stripe_stripe` and one provider per single-method variant
(`pp_stripe-ideal_stripe`, ...), all sharing the options. See docs/providers/stripe.md.

There is no giropay variant: Stripe's partners closed giropay on June 30, 2024 ("No new business
onboarding or transactions will be possible after June 30, 2024", docs.stripe.com/payments/giropay).
"""

from paymod.providers.stripe.amounts import from_smallest_unit, to_smallest_unit
from paymod.providers.stripe.options import StripeOptions
from paymod.providers.stripe.provider import (
    BancontactProvider,
    BlikProvider,
    IdealProvider,
    OxxoProvider,
    PromptpayProvider,
    Przelewy24Provider,
    StripeProvider,
)

services = [
    StripeProvider,
    BancontactProvider,
    BlikProvider,
    IdealProvider,
    Przelewy24Provider,
    PromptpayProvider,
    OxxoProvider,
]

__all__ = [
    "BancontactProvider",
    "BlikProvider",
    "IdealProvider",
    "OxxoProvider",
    "PromptpayProvider",
    "Przelewy24Provider",
    "StripeOptions",
    "StripeProvider",
    "from_smallest_unit",
    "services",
    "to_smallest_unit",
]
