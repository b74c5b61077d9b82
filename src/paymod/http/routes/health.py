"""What operators' tools call: liveness, readiness, and Prometheus metrics.

- `GET /health`: the process answers (no database): a liveness probe restarts a process only when
  the process itself is stuck, never because the database is down.
- `GET /health/ready`: the database answers and is at this version's migrations, and the providers
  the regions name are loaded; 200 with the checks, or 503 with the ones that fail. A readiness probe
  takes the process out of the load balancer until it is ready again.
- `GET /metrics`: this process's metrics and the database's backlog in Prometheus' text format,
  behind the secret API key (Prometheus sends it with `authorization: {credentials: sk_...}`).
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, ConfigDict

from paymod.health.backlog import read_backlog, render_backlog
from paymod.health.readiness import check_readiness
from paymod.http import errors
from paymod.http.auth import Admin
from paymod.http.errors import ServiceUnavailableError
from paymod.http.json import JSONResponse
from paymod.http.routes.common import router
from paymod.http.state import state_of

log = logging.getLogger("paymod.http")

health = router("", "health")


class Alive(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "failing"]
    message: str | None = None


class Ready(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, Check]


@health.get("/health", response_model=Alive)
async def alive() -> JSONResponse:
    """Whether the process answers (liveness); it touches no database."""
    return JSONResponse({"status": "ok"})


@health.get(
    "/health/ready",
    response_model=Ready,
    responses={
        errors.STATUS[ServiceUnavailableError]: {
            "model": Ready,
            "description": "Not ready: the failing checks say why",
        }
    },
)
async def ready(request: Request) -> JSONResponse:
    """Whether the process can serve (readiness): `database` answers, `migrations` are current (the
    database's Alembic revision is this version's head), `providers` named by regions are loaded."""
    state = state_of(request)
    readiness = await check_readiness(
        state.module.database,
        state.module.providers.ids,
        {region.id: list(region.providers) for region in state.settings.regions},
    )
    status = 200 if readiness.ready else errors.STATUS[ServiceUnavailableError]
    return JSONResponse(readiness.document(), status_code=status)


@health.get("/metrics", include_in_schema=False)
async def metrics(request: Request, _: Admin) -> Response:
    """Prometheus' text format: this process's counters and histograms, then the backlog gauges read
    from the database now (the same in every process that shares it)."""
    try:
        backlog = await read_backlog(state_of(request).module.database)
    except Exception:  # the process's own metrics still matter when the database is down
        log.warning("metrics: could not read the backlog from the database", exc_info=True)
        backlog = None
    return Response(generate_latest(REGISTRY) + render_backlog(backlog), media_type=CONTENT_TYPE_LATEST)


__all__ = ["health"]
