"""Schemathesis against `/openapi.json` of a real `paymod serve`: no 500, no answer the schema does not
describe, on SQLite and PostgreSQL.

Each operation gets up to EXAMPLES schema-valid requests and NEGATIVE_EXAMPLES schema-invalid ones,
half of them aimed at real ids (a payment, a collection, a refund reason, ...) so that the routes'
state rules run, not only their 404s. Both admin and publishable keys are sent on every request.
The server runs without its worker (`--no-worker`): the fuzzer registers webhook endpoints at
made-up URLs, and nothing may be sent to them.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from e2e.support import ADMIN, STORE, TESTING, WEBHOOK_SECRET, Server, running_server
from paymod.providers.testing import SIGNATURE_HEADER, sign

EXAMPLES = int(os.environ.get("PAYMOD_FUZZ_EXAMPLES", "50"))
NEGATIVE_EXAMPLES = max(1, EXAMPLES // 2)
POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
NEGATIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
]
AUTH = {**ADMIN, **STORE}
POSTGRES_ADMIN_URL = os.environ.get("PAYMOD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
def fuzz_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of its own: the fuzzer leaves the shared test database alone."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fuzz.db'}"
        return
    name = f"paymod_fuzz_{os.getpid()}"

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def seed(server: Server) -> dict[str, str]:
    """Real ids for the path parameters, by the path's first segments."""
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as http:
        paid = http.post("/admin/payment-collections", json={"amount": "100", "currency_code": "usd"}).json()
        collection_id = paid["payment_collection"]["id"]
        http.post(
            f"/store/payment-collections/{collection_id}/payment-sessions", json={"provider_id": TESTING}
        )
        payment_id = http.post(f"/store/payment-collections/{collection_id}/authorize").json()["payment"][
            "id"
        ]
        open_collection = http.post(
            "/admin/payment-collections", json={"amount": "7.5", "currency_code": "eur"}
        )
        reason = http.post("/admin/refund-reasons", json={"label": "fuzz", "code": "fuzz"}).json()
        holder = http.post(
            "/admin/account-holders", json={"provider_id": TESTING, "customer": {"id": "cus_fuzz"}}
        ).json()
        body = json.dumps({"id": "evt_fuzz", "action": "authorized", "session_id": "payses_fuzz"}).encode()
        event = http.post(
            "/hooks/payment/testing_default",
            content=body,
            headers={SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET)},
        ).json()
        endpoint = http.post("/admin/webhook-endpoints", json={"url": "https://shop.example/fuzz"}).json()
    return {
        "/admin/payment-collections/": open_collection.json()["payment_collection"]["id"],
        "/store/payment-collections/": collection_id,
        "/admin/payments/": payment_id,
        "/admin/refund-reasons/": reason["refund_reason"]["id"],
        "/admin/account-holders/": holder["account_holder"]["id"],
        "/admin/regions/": "reg_e2e",
        "/admin/webhook-events/": event["id"],
        "/admin/webhook-endpoints/": endpoint["webhook_endpoint"]["id"],
        "/hooks/payment/": "testing_default",
    }


def real_path_parameters(path: str, ids: dict[str, str]) -> dict[str, str] | None:
    for prefix, value in ids.items():
        if path.startswith(prefix):
            return {"provider" if prefix == "/hooks/payment/" else "id": value}
    return None


def fuzz(operation: Any, base_url: str, ids: dict[str, str], mode: GenerationMode, examples: int) -> int:
    """Runs one operation's examples; returns how many requests were made."""
    strategies = [operation.as_strategy(generation_mode=mode, headers=AUTH)]
    real = real_path_parameters(operation.path, ids)
    if real is not None:
        strategies.append(operation.as_strategy(generation_mode=mode, headers=AUTH, path_parameters=real))
    made = 0
    checks = POSITIVE_CHECKS if mode is GenerationMode.POSITIVE else NEGATIVE_CHECKS

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def run(case: Any) -> None:
        nonlocal made
        made += 1
        response = case.call(base_url=base_url, timeout=30)
        case.validate_response(response, checks=checks)

    run()
    return made


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    fuzz_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Generated URLs may pass the server's 16 KiB limit on a request's headers (a 431, tested in
    # test_server_limits.py); the limit is raised here so the routes' own validation answers them.
    with running_server(
        fuzz_database,
        tmp_path,
        extra_env={"PAYMOD_SERVER__HEADER_LIMIT": str(1024 * 1024)},
        serve_args=("--no-worker",),
    ) as server:
        ids = seed(server)
        schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        failures: list[str] = []
        requests = 0
        no_negative = 0
        for operation in operations:
            for mode, examples in (
                (GenerationMode.POSITIVE, EXAMPLES),
                (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
            ):
                try:
                    requests += fuzz(operation, server.base_url, ids, mode, examples)
                except Unsatisfiable:
                    # Nothing in this operation can be made schema-invalid (e.g. only a string id).
                    assert mode is GenerationMode.NEGATIVE, operation.path
                    no_negative += 1
                except (
                    Exception,
                    BaseExceptionGroup,
                ) as exc:  # a failed check: collect them all, then report
                    failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
        with capsys.disabled():
            print(
                f"\nschemathesis on {fuzz_database.split(':', 1)[0]}: {len(operations)} operations, "
                f"{requests} requests ({no_negative} operations without invalid inputs to send), "
                f"{len(failures)} failures"
            )
        server_log = server.log.read_text()
    assert len(operations) == 43
    assert not failures, "\n\n".join(failures) + f"\n\nserver log:\n{server_log[-5000:]}"
    assert "Traceback" not in server_log, server_log[-5000:]
