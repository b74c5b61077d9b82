"""The provider conformance kit: a pytest suite a provider passes to behave as paymod expects.

```python
from paymod.testing import ProviderConformance, ProviderDriver

class TestAcme(ProviderConformance):
    driver = AcmeDriver()
```

It needs pytest and pytest-asyncio: `pip install "paymod[testing]"`.
"""

try:
    import pytest  # noqa: F401
    import pytest_asyncio  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "paymod.testing is a pytest suite: install pytest and pytest-asyncio (pip install 'paymod[testing]')"
    ) from exc

from paymod.testing.driver import Capability, Harness, Operation, ProviderDriver, Scenario
from paymod.testing.suite import ProviderConformance

__all__ = ["Capability", "Harness", "Operation", "ProviderConformance", "ProviderDriver", "Scenario"]
