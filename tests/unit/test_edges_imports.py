"""The edges' walls: HTTP, CLI and settings reach the database only through the services layer, and
the HTTP error mapping and the Idempotency-Key middleware do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import paymod

PACKAGE = Path(paymod.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level and TYPE_CHECKING imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _files(*parts: str) -> list[Path]:
    target = PACKAGE.joinpath(*parts)
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


@pytest.mark.parametrize(
    "path",
    # The dashboard's read-only pages keep their own queries (the one exception in .importlinter).
    [*(p for p in _files("http") if "dashboard" not in p.parts), *_files("cli"), *_files("config.py")],
    ids=lambda path: str(path.relative_to(PACKAGE)),
)
def test_the_edges_and_the_settings_never_import_persistence(path: Path) -> None:
    assert not {name for name in _imports(path) if name.startswith("paymod.persistence")}


@pytest.mark.parametrize("path", _files("cli"), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_the_cli_prints_json_without_the_http_layer(path: Path) -> None:
    assert not {name for name in _imports(path) if name.startswith("paymod.http.json")}


def test_http_errors_and_the_idempotency_middleware_do_not_import_each_other() -> None:
    errors = _imports(PACKAGE / "http" / "errors.py")
    idempotency = _imports(PACKAGE / "http" / "idempotency.py")
    assert not {name for name in errors if name.startswith("paymod.http.idempotency")}
    assert "paymod.http.errors" in idempotency


def test_the_default_database_url_is_the_same_for_settings_and_the_module() -> None:
    from paymod.config import DEFAULT_DATABASE_URL, Settings
    from paymod.persistence import database

    assert DEFAULT_DATABASE_URL == database.DEFAULT_DATABASE_URL == Settings().database_url


def test_a_lost_race_still_tells_the_client_to_retry_with_its_key() -> None:
    from paymod.domain.errors import ConflictError
    from paymod.http.errors import CONFLICT_MESSAGE, body_of

    assert body_of(ConflictError("rows changed under us")) == {
        "type": "conflict",
        "code": "conflict",
        "message": "The request conflicted with another request. "
        "You may retry the request with the provided Idempotency-Key.",
    }
    assert body_of(ConflictError("x"))["message"] == CONFLICT_MESSAGE
