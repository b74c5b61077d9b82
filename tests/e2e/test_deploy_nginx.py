"""The deployment guide's topology, run for real: nginx with `examples/deploy/nginx.conf` in front of
two `paymod serve --no-worker` replicas and a `paymod worker`, all on one PostgreSQL database, with
the migrations applied by `paymod migrate` beforehand (the release step)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from e2e.support import (
    ADMIN,
    STORE,
    TESTING,
    WEBHOOK_SECRET,
    free_port,
    paymod_command,
    paymod_env,
    running_server,
    running_workers,
    stop_process,
)
from paymod.providers.testing import SIGNATURE_HEADER, sign

SITE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "deploy" / "nginx.conf"
# The placeholders of the example that a real deployment (and this test) replaces.
EXAMPLE_REPLICAS = ("server 127.0.0.1:9001;", "server 127.0.0.1:9002;")
EXAMPLE_LISTEN = "listen 80;"
STARTUP_SECONDS = 30.0
WAIT_SECONDS = 60.0
# Each access-log line: the request id paymod got and the replica that answered.
LOG_FORMAT = "'$paymod_request_id|$upstream_addr|$status|$request_method $uri'"


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail(
            "nginx is not installed. `./dev test` installs Debian's package when it runs as root with "
            "apt-get; otherwise install it yourself (`apt-get install nginx`) and run the tests again."
        )
    return found


def site_config(replicas: list[str], port: int) -> str:
    """The example file with this run's replicas and port in place of its placeholders."""
    text = SITE_CONFIG.read_text()
    for placeholder, replacement in [
        *((p, f"server {r};") for p, r in zip(EXAMPLE_REPLICAS, replicas, strict=True)),
        (EXAMPLE_LISTEN, f"listen 127.0.0.1:{port};"),
    ]:
        assert text.count(placeholder) == 1, f"{SITE_CONFIG} no longer has {placeholder!r} once"
        text = text.replace(placeholder, replacement)
    return text


def main_config(directory: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf provides around conf.d files, kept inside `directory`."""
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp_paths = "\n".join(f"    {kind}_temp_path {directory / kind};" for kind in kinds)
    # As root, nginx's workers would switch to `nobody`, who cannot enter pytest's private directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} notice;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    log_format replicas {LOG_FORMAT};\n"
        f"    access_log {directory / 'access.log'} replicas;\n"
        f"{temp_paths}\n"
        f"    include {directory / 'paymod.conf'};\n"
        "}\n"
    )


@contextmanager
def running_nginx(directory: Path, replicas: list[str]) -> Iterator[str]:
    """nginx on a free loopback port in front of `replicas`; yields its base URL."""
    nginx = nginx_binary()
    directory.mkdir()
    port = free_port()
    (directory / "paymod.conf").write_text(site_config(replicas, port))
    (directory / "nginx.conf").write_text(main_config(directory))
    command = [nginx, "-p", str(directory), "-e", str(directory / "startup.log"), "-c", "nginx.conf"]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30, check=False)
    assert checked.returncode == 0, f"nginx -t refused the configuration:\n{checked.stderr}"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise AssertionError(f"nginx exited:\n{(directory / 'error.log').read_text()}")
            try:
                if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx did not answer:\n{(directory / 'error.log').read_text()}")
            time.sleep(0.1)
        yield base_url
    finally:
        stop_process(process)


def replica_that_answered(access_log: Path, request_id: str) -> str:
    """The upstream address nginx logged for the request with this id ("a, b" when it tried a, then b).

    nginx writes the line once the response is sent, so it may come a moment after the client read it."""
    deadline = time.monotonic() + 5
    while True:
        for line in access_log.read_text().splitlines():
            if line.startswith(f"{request_id}|"):
                return line.split("|")[1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no access-log line for {request_id}:\n{access_log.read_text()}")
        time.sleep(0.02)


def traced(headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    request_id = f"req-{uuid.uuid4().hex}"
    return request_id, {**headers, "X-Request-Id": request_id}


def wait_for_status(http: httpx.Client, collection_id: str, status: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        response = http.get(f"/admin/payment-collections/{collection_id}", headers=ADMIN)
        assert response.status_code == 200, response.text
        if response.json()["payment_collection"]["status"] == status:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{collection_id} never became {status}: {response.text}")
        time.sleep(0.1)


@pytest.mark.parametrize("database", ["postgresql"])
def test_nginx_in_front_of_two_replicas_and_a_worker_serves_replays_and_fails_over(
    database: str, database_url: str, tmp_path: Path
) -> None:
    env = paymod_env(database_url, tmp_path)
    release = subprocess.run(
        [*paymod_command(), "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert release.returncode == 0, release.stderr

    with ExitStack() as stack:
        servers = []
        for n in range(2):
            directory = tmp_path / f"replica-{n}"
            directory.mkdir()
            servers.append(
                stack.enter_context(
                    running_server(database_url, directory, serve_args=["--no-worker", "--no-migrate"])
                )
            )
        [worker] = stack.enter_context(running_workers(env, tmp_path, 1))
        worker.wait_ready()
        replicas = [s.base_url.removeprefix("http://") for s in servers]
        base_url = stack.enter_context(running_nginx(tmp_path / "nginx", replicas))
        access_log = tmp_path / "nginx" / "access.log"
        http = stack.enter_context(httpx.Client(base_url=base_url, timeout=30))

        # A POST with an Idempotency-Key, then the same POST answered by the other replica: the
        # stored response is replayed, not a second collection made.
        key = {"Idempotency-Key": str(uuid.uuid4())}
        body = {"amount": "49.90", "currency_code": "usd"}
        first_id, headers = traced({**ADMIN, **key})
        first = http.post("/admin/payment-collections", json=body, headers=headers)
        assert first.status_code == 200, first.text
        assert "idempotent-replayed" not in first.headers
        replay_id, headers = traced({**ADMIN, **key})
        replay = http.post("/admin/payment-collections", json=body, headers=headers)
        assert replay.status_code == 200, replay.text
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == first.json()
        served_by = [replica_that_answered(access_log, request) for request in (first_id, replay_id)]
        assert sorted(served_by) == sorted(replicas)
        collection = first.json()["payment_collection"]["id"]
        listed = http.get("/admin/payment-collections", headers=ADMIN).json()
        assert [c["id"] for c in listed["payment_collections"]] == [collection]

        # A checkout through the proxy, then the provider's webhook, which only the worker applies
        # (the replicas run no worker).
        session = http.post(
            f"/store/payment-collections/{collection}/payment-sessions",
            json={"provider_id": TESTING},
            headers=STORE,
        )
        assert session.status_code == 200, session.text
        session_id = session.json()["payment_collection"]["payment_sessions"][0]["id"]
        event = json.dumps(
            {"id": "evt_deploy", "action": "captured", "session_id": session_id, "amount": 49.9}
        )
        hook = http.post(
            "/hooks/payment/testing_default",
            content=event.encode(),
            headers={SIGNATURE_HEADER: sign(event.encode(), WEBHOOK_SECRET)},
        )
        assert hook.status_code == 200, hook.text
        assert hook.json()["duplicate"] is False
        wait_for_status(http, collection, "completed")

        # One replica stops (a rolling restart): nginx sends everything to the other, POSTs included.
        stop_process(servers[0].process)
        for _ in range(4):
            request_id, headers = traced(ADMIN)
            created = http.post("/admin/payment-collections", json=body, headers=headers)
            assert created.status_code == 200, created.text
            assert replica_that_answered(access_log, request_id).endswith(replicas[1])
        assert http.get("/health").status_code == 200

    # A request without an X-Request-Id (the health checks) got one minted by nginx.
    minted = [line.split("|")[0] for line in access_log.read_text().splitlines() if "GET /health" in line]
    assert minted and all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in minted)
