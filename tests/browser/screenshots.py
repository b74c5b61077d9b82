"""Makes docs/dashboard.md's screenshots again: runs the browser flows on SQLite with
PAYMOD_DASHBOARD_SCREENSHOTS pointing at docs/images.

    .venv/bin/python -m tests.browser.screenshots
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    env = {**os.environ, "PAYMOD_DASHBOARD_SCREENSHOTS": str(ROOT / "docs" / "images")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-n",
        "0",
        "-q",
        str(ROOT / "tests" / "browser"),
        "-k",
        "sqlite",
    ]
    return subprocess.call(command, env=env, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
