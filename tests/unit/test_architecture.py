"""The layers hold: import-linter's contracts pass, and docs/architecture.md draws the layers the
contract declares (change one and this fails until the other follows)."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / ".importlinter"
DOC = ROOT / "docs" / "architecture.md"


def layer_picture() -> str:
    """The layers of the contract, top to bottom, one line each, as docs/architecture.md draws them."""
    config = configparser.ConfigParser()
    config.read(CONTRACTS)
    declared = config["importlinter:contract:layers"]["layers"]
    layers = [line.strip() for line in declared.splitlines() if line.strip()]
    width = max(len(layer) for layer in layers)
    lines = []
    for n, layer in enumerate(layers):
        lines.append(f"  {layer.center(width)}".rstrip())
        if n < len(layers) - 1:
            lines.append(f"  {'↓'.center(width)}".rstrip())
    return "\n".join(lines)


def test_every_import_contract_is_kept() -> None:
    # In a process of its own: import-linter reconfigures logging, which other tests read.
    check = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(CONTRACTS)!r}, no_cache=True, no_logo=True))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_architecture_page_draws_the_contracts_layers() -> None:
    page = DOC.read_text()
    drawn = re.search(r"<!-- layers: generated -->\n```text\n(.*?)\n```", page, re.S)
    assert drawn is not None, "docs/architecture.md lost its generated layer picture"
    assert drawn.group(1) == layer_picture(), (
        "The layers changed: paste the new picture into docs/architecture.md:\n" + layer_picture()
    )
