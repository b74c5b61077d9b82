"""The PayPal payment provider on PayPal's official server SDK (the only place paymod imports it).

Configure with `{"resolve": "paymod.providers.paypal", "id": "paypal", "options": {"client_id": ...,
"client_secret": ...}}`: that registers `pp_paypal_paypal`. Needs the extra `paymod[paypal]`. See
docs/providers/paypal.md.
"""

from paymod.providers.paypal.amounts import to_value
from paymod.providers.paypal.options import PayPalOptions
from paymod.providers.paypal.provider import PayPalProvider

services = [PayPalProvider]

__all__ = ["PayPalOptions", "PayPalProvider", "services", "to_value"]
