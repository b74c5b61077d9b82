"""The Stripe fixtures of tests/stripe (localstripe on loopback, the in-memory fake), for the kit, and
the fake PayPal's helpers of tests/paypal.

tests/stripe keeps them in its conftest and imports its helpers as top-level modules; that directory
goes on the path and its conftest is loaded under a name of its own, so both suites share one
definition of how localstripe is started and wiped. tests/paypal goes on the path for its fake server
and settings (the PayPal driver starts the fake itself).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

STRIPE_TESTS = Path(__file__).resolve().parents[1] / "stripe"
PAYPAL_TESTS = Path(__file__).resolve().parents[1] / "paypal"
for helpers in (STRIPE_TESTS, PAYPAL_TESTS):
    if str(helpers) not in sys.path:
        sys.path.insert(0, str(helpers))

_spec = importlib.util.spec_from_file_location("stripe_test_fixtures", STRIPE_TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_stripe_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_stripe_fixtures)

localstripe_url = _stripe_fixtures.localstripe_url
localstripe = _stripe_fixtures.localstripe
fake = _stripe_fixtures.fake
