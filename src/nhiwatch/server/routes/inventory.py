"""The inventory: every identity, filtered, sorted and paged."""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Query

from nhiwatch.server import queries
from nhiwatch.server.deps import StoreView

router = APIRouter()

RiskLevel = Literal[queries.RISK_LEVELS]  # type: ignore[valid-type]
IdentitySort = Literal[tuple(queries.IDENTITY_SORTS)]  # type: ignore[valid-type]


@router.get("/api/identities", summary="The inventory, one page at a time")
def identities(view: StoreView,
               search: Optional[str] = Query(None, max_length=200, description="ARN, name, owner or team"),
               type: Optional[str] = Query(None, max_length=64, description="NHI type"),  # noqa: A002
               account: Optional[str] = Query(None, pattern=r"^\d{12}$"),
               risk: Optional[RiskLevel] = None,
               sort: IdentitySort = "risk",
               order: Optional[Literal["asc", "desc"]] = None,
               limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10_000_000)) -> dict:
    return queries.identities(view, search=search, nhi_type=type, account=account, risk=risk, sort=sort,
                              order=order, limit=limit, offset=offset)
