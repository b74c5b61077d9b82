"""The scripted testing provider passes the conformance kit."""

from paymod.testing import ProviderConformance
from paymod.testing.examples import TestingDriver


class TestTestingProvider(ProviderConformance):
    driver = TestingDriver()
