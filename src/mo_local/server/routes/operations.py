"""Operator endpoints: liveness and Prometheus metrics (no authentication, no content)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mo_local.server.context import Context
from mo_local.server.models import Health

router = APIRouter(tags=["operations"])


@router.get("/v1/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    """Liveness: the process serves requests."""
    return Health(status="ok")


@router.get("/metrics", include_in_schema=False)
async def metrics(context: Context) -> Response:
    """Prometheus text exposition of this app's registry."""
    return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)
