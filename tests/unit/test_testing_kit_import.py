"""`paymod.testing` needs pytest, which paymod itself does not: without it, the import says what
to install."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_kit_without_pytest_says_to_install_the_testing_extra() -> None:
    # `None` in sys.modules makes `import pytest` fail as it does where pytest is not installed.
    code = "import sys; sys.modules['pytest'] = None; import paymod.testing"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "ImportError: paymod.testing is a pytest suite" in result.stderr
    assert "pip install 'paymod[testing]'" in result.stderr


def test_paymod_itself_imports_no_pytest() -> None:
    code = "import sys, paymod, paymod.bootstrap, paymod.http; print('pytest' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
