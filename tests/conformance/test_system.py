"""The system provider passes the conformance kit."""

from paymod.testing import ProviderConformance
from paymod.testing.examples import SystemDriver


class TestSystemProvider(ProviderConformance):
    driver = SystemDriver()
