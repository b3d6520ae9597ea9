"""Incidents: the list, and one incident with its timeline and graph."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from nhiwatch.server import queries
from nhiwatch.server.deps import StoreView, checked_incident_id

router = APIRouter()


@router.get("/api/incidents", summary="Incidents, most severe first")
def incidents(view: StoreView, status: Literal["open", "all", "closed"] = "open") -> dict:
    return queries.list_incidents(view, status=None if status == "all" else status)


@router.get("/api/incidents/{incident_id}", summary="One incident: timeline and the graph of what it links")
def incident(incident_id: str, view: StoreView) -> dict:
    return queries.incident(view, checked_incident_id(incident_id))
