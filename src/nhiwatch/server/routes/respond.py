"""Response: an incident's proposed actions as a dry-run, approving one, the audit trail, undo.

The guard in `deps` has already checked the token and the Origin of every POST here."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, HTTPException, Query

from nhiwatch.server import queries
from nhiwatch.server.deps import ServerApi, StoreView, checked_incident_id
from nhiwatch.store.db import Store

router = APIRouter()


@router.get("/api/incidents/{incident_id}/response", summary="The incident's proposed actions, as a dry-run")
def response_plan(incident_id: str, view: StoreView, api: ServerApi) -> dict:
    from nhiwatch.respond.executor import list_actions

    proposals = _proposals(view, checked_incident_id(incident_id), api.settings.protected)
    done = [a for a in list_actions(view) if a.get("incident_id") == incident_id]
    actions = []
    for index, proposal in enumerate(proposals):
        executed = next((a for a in done if a["kind"] == proposal.kind and a["identity"] == proposal.identity),
                        None)
        actions.append({"index": index, "kind": proposal.kind, "identity": proposal.identity, "why": proposal.why,
                        "summary": proposal.plan.summary if proposal.plan else "",
                        "refused": proposal.refused if proposal.plan else (proposal.refused or "no plan"),
                        "calls": [c.cli() for c in proposal.plan.calls] if proposal.plan else [],
                        "executed": _action_view(executed) if executed else None})
    return {"incident_id": incident_id, "dry_run": True, "actions": actions}


@router.post("/api/incidents/{incident_id}/response/{index}/approve",
             summary="Make one proposed action (needs the token)")
def approve(incident_id: str, index: int, view: StoreView, api: ServerApi) -> dict:
    from nhiwatch.respond.actions import ActionError
    from nhiwatch.respond.service import AwsUnavailable

    proposals = _proposals(view, checked_incident_id(incident_id), api.settings.protected)
    if not 0 <= index < len(proposals):
        raise HTTPException(404, f"incident {incident_id} has {len(proposals)} proposed actions; no #{index}")
    proposal = proposals[index]
    if proposal.plan is None or proposal.refused:
        raise HTTPException(409, f"this action cannot be made: {proposal.refused or 'no plan'}")
    with api.write_lock:
        try:
            responder = api.responder_factory(view)
            outcome = responder.execute(proposal.plan, reason=proposal.why, incident_id=incident_id,
                                        finding_ids=proposal.finding_ids)
        except AwsUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
        except ActionError as exc:
            raise HTTPException(409, str(exc)) from None
    return _action_view(outcome.record)


@router.get("/api/actions", summary="Recorded response actions (the audit trail)")
def actions(view: StoreView, incident: Optional[str] = Query(None, max_length=64),
            identity: Optional[str] = Query(None, max_length=2048)) -> dict:
    from nhiwatch.respond.executor import list_actions

    items = [a for a in list_actions(view, identity=identity) if not incident or a.get("incident_id") == incident]
    return {"items": [_action_view(a) for a in items]}


@router.post("/api/actions/{action_id}/undo", summary="Undo a recorded action (needs the token)")
def undo(action_id: str, view: StoreView, api: ServerApi) -> dict:
    from nhiwatch.respond.actions import ActionError
    from nhiwatch.respond.executor import UnknownAction, undoable
    from nhiwatch.respond.service import AwsUnavailable

    with api.write_lock:
        try:
            undoable(view, action_id)  # an unknown id is 404 and a finished one 409, before AWS is asked
            outcome = api.responder_factory(view).undo(action_id)
        except AwsUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
        except UnknownAction as exc:
            raise HTTPException(404, str(exc)) from None
        except ActionError as exc:
            raise HTTPException(409, str(exc)) from None
    return dict(_action_view(outcome.record), secret=outcome.secret)


def _proposals(view: Store, incident_id: str, protected: list[str]):
    from nhiwatch.respond.service import incident_proposals

    try:
        _incident, proposals = incident_proposals(view, incident_id, protected)
    except LookupError as exc:
        raise queries.NotFound(str(exc)) from None
    return proposals


def _action_view(record: dict) -> dict:
    undo = record.get("undo")
    return {"id": record["id"], "created_at": record.get("created_at"), "kind": record["kind"],
            "identity": record["identity"], "account_id": record.get("account_id"),
            "incident_id": record.get("incident_id"), "status": record["status"], "reason": record.get("reason"),
            "summary": record.get("summary"), "actor": record.get("actor"), "mode": record.get("mode"),
            "error": record.get("error"),
            "calls": record.get("calls") or [],
            "undo": {"status": record["status"] if record["status"] in ("undone", "undo-failed") else None,
                     "error": undo.get("error"), "at": undo.get("at")} if undo else None}
