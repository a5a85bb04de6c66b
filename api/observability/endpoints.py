"""`GET /metrics`: this process's registry in the Prometheus text format."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from api.observability.metrics import Metrics

router = APIRouter(tags=["ops"])


async def get_metrics(request: Request) -> Metrics:
    """This app's registry: the one collaborator `GET /metrics` needs (not the whole state)."""
    metrics: Metrics = request.app.state.tollgate.metrics
    return metrics


@router.get("/metrics", response_class=Response)
async def metrics(metrics: Annotated[Metrics, Depends(get_metrics)]) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
