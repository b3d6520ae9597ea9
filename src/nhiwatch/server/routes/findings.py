"""Behavioural findings, filtered and paged."""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Query

from nhiwatch.core.severity import SEVERITIES, Severity
from nhiwatch.server import queries
from nhiwatch.server.deps import StoreView

router = APIRouter()

SeverityName = Literal[SEVERITIES]  # type: ignore[valid-type]


@router.get("/api/findings", summary="Behavioural findings, most severe first")
def findings(view: StoreView, severity: SeverityName = Severity.LOW.value,
             identity: Optional[str] = Query(None, max_length=2048),
             status: Optional[Literal["open", "resolved", "benign", "suppressed", "all"]] = "open",
             limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=1_000_000)) -> dict:
    return queries.findings(view, severity=severity, identity=identity,
                            status=None if status == "all" else status, limit=limit, offset=offset)
