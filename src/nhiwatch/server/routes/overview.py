"""The overview page: identities by type and risk, open incidents, findings over time."""

from __future__ import annotations

from fastapi import APIRouter

from nhiwatch.server import queries
from nhiwatch.server.deps import StoreView

router = APIRouter()


@router.get("/api/overview", summary="Identities by type and risk, open incidents, findings over time")
def overview(view: StoreView) -> dict:
    return queries.overview(view)
