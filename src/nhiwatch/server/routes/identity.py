"""One identity: its posture, its learned baseline (the heatmap and profile), findings and permissions."""

from __future__ import annotations

from fastapi import APIRouter, Query

from nhiwatch.server import queries
from nhiwatch.server.deps import StoreView

router = APIRouter()


@router.get("/api/identity", summary="One identity: posture, baseline profile, findings, permissions")
def identity(view: StoreView, arn: str = Query(..., min_length=1, max_length=2048)) -> dict:
    return queries.identity(view, arn)
