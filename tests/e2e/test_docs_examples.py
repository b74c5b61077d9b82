"""The documentation's runnable examples, run as printed: the README's Python program (also
`examples/quickstart.py`) and the webhooks guide's "Try it" shell session."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.support import free_port

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.py"
QUICKSTART_OUTPUT = "completed: captured 49.90, refunded 5\n"
RUN_SECONDS = 120


def fenced_block(markdown: str, after: str, language: str) -> str:
    """The first ```language block after the line `after`."""
    start = markdown.index(after)
    match = re.compile(rf"^```{language}\n(.*?)^```$", re.MULTILINE | re.DOTALL).search(markdown, start)
    assert match is not None, f"no ```{language} block after {after!r}"
    return match.group(1)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without paymod's settings, with the virtualenv's commands first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMOD_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def test_the_readme_shows_the_quickstart_file_exactly() -> None:
    readme = (ROOT / "README.md").read_text()
    assert fenced_block(readme, "## Use it from Python", "python") == QUICKSTART.read_text()
    assert f"`{QUICKSTART_OUTPUT.strip()}`" in readme.replace("\n", " ")


def test_the_quickstart_runs_as_printed(database: str, database_url: str, tmp_path: Path) -> None:
    # On SQLite the program's own default (./paymod.db in its working directory); on PostgreSQL the
    # database it is pointed at with PAYMOD_DATABASE_URL.
    env = clean_env() if database == "sqlite" else clean_env(PAYMOD_DATABASE_URL=database_url)
    for _ in range(2):  # a second run on the same database prints the same
        result = subprocess.run(
            [sys.executable, str(QUICKSTART)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_SECONDS,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == QUICKSTART_OUTPUT
    assert (tmp_path / "paymod.db").exists() == (database == "sqlite")


def expected_outputs(snippet: str) -> re.Pattern[str]:
    """The `# {...}` comments of a shell snippet, in order, as one pattern (`...` matches anything)."""
    outputs = [line.removeprefix("# ") for line in snippet.splitlines() if line.startswith("# {")]
    assert len(outputs) == 3
    parts = [re.escape(output).replace(re.escape("..."), ".*?") for output in outputs]
    return re.compile(".*?".join(parts), re.DOTALL)


# The snippet uses the embedded default database, ./paymod.db, as a reader trying it would.
@pytest.mark.parametrize("database", ["sqlite"])
def test_the_webhooks_try_it_prints_what_the_guide_says(database: str, tmp_path: Path) -> None:
    missing = [tool for tool in ("curl", "jq", "openssl") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the webhooks guide's example needs {', '.join(missing)}: apt-get install them")
    snippet = fenced_block((ROOT / "docs" / "webhooks.md").read_text(), "### Try it", "bash")
    assert snippet.count("9000") >= 5
    # The reader's port 9000 may be taken here; the snippet is otherwise run as printed, from a
    # directory that has the repository's examples/.
    script = snippet.replace("9000", str(free_port()))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    process = subprocess.Popen(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=RUN_SECONDS)
    finally:
        # The server the snippet started in the background, should the snippet not get to stop it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    assert process.returncode == 0, stderr
    assert expected_outputs(snippet).search(stdout), stdout
    # `paymod webhooks list` shows the event, applied.
    assert re.search(r"whev_\w+.*processed", stdout), stdout


def test_the_provider_guide_s_conformance_example_passes_the_kit(tmp_path: Path) -> None:
    # As a provider's own project runs it: its files, its pytest settings (pytest-asyncio's strict
    # mode, warnings as errors), paymod installed.
    guide = (ROOT / "docs" / "providers" / "writing-a-provider.md").read_text()
    example = ROOT / "examples" / "conformance"
    for name in ("acme_pay.py", "test_acme_pay.py"):
        assert f'--8<-- "examples/conformance/{name}"' in guide
        shutil.copy(example / name, tmp_path / name)
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The guide prints the run's summary and its skips (what the driver does not declare, by name).
    printed = fenced_block(guide, "## Check your provider with the conformance kit", "text").splitlines()
    assert printed[0] == "$ pytest -q -rs test_acme_pay.py"
    assert re.fullmatch(r"\d+ passed, \d+ skipped", printed[-1])
    assert re.search(rf"^{printed[-1]} in ", result.stdout, re.MULTILINE), result.stdout
    for line in printed:
        skip = re.fullmatch(r"SKIPPED \[(\d+)\] \.\.\.: (.*)", line)
        if skip is not None:
            count, reason = skip.groups()
            assert re.search(rf"^SKIPPED \[{count}\] \S+: {re.escape(reason)}$", result.stdout, re.MULTILINE)
