"""Carrying out a plan safely: refusals first, the state before recorded before anything changes,
every call recorded as it succeeds, and an undo built from that record.

A record exists before the first call is made and is updated after each one, so a failure half-way
(or a crash) never leaves a change nobody knows about.
"""

from __future__ import annotations

import fnmatch
import getpass
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import orjson

from nhiwatch.inventory.live import plain, problem
from nhiwatch.respond.actions import ACTIONS, ActionError, Call, Plan, Target
from nhiwatch.respond.managed import aws_managed
from nhiwatch.store.db import Store


class UnknownAction(ActionError, LookupError):
    """No recorded action has this id (the API answers 404, the command line exit 2)."""


class Refused(ActionError):
    """The guard said no: an AWS-managed role, nhiwatch's own identity, or a protected identity."""


def guard(target: Target, *, own_arn: str | None, protected: list[str], allow_org_access: bool = False) -> None:
    managed = aws_managed(target, allow_org_access=allow_org_access)
    if managed:
        raise Refused(f"{target.arn} is {managed}")
    if own_arn and _same_identity(target, own_arn):
        raise Refused(f"{target.arn} is the identity nhiwatch itself runs as")
    for pattern in protected:
        if fnmatch.fnmatchcase(target.arn, pattern) or pattern == target.name:
            raise Refused(f"{target.arn} is protected ({pattern})")


def _same_identity(target: Target, caller_arn: str) -> bool:
    if caller_arn == target.arn:
        return True
    # arn:aws:sts::123:assumed-role/NAME/session is the role NAME of account 123
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[5].startswith("assumed-role/"):
        return target.kind == "role" and parts[4] == target.account_id and parts[5].split("/")[1] == target.name
    return False


def _response(value: dict) -> dict:
    return plain({k: v for k, v in value.items() if k != "ResponseMetadata"})


@dataclass
class Outcome:
    record: dict
    secret: str | None = None  # shown once (a new one-time password), never stored


class Responder:
    """Runs plans against AWS through boto3 and keeps the audit trail in the store."""

    def __init__(self, store: Store, session_for: Callable[[str], Any], *, protected: list[str] | None = None,
                 own_arn: str | None = None, mode: str = "manual", allow_org_access: bool = False) -> None:
        self.store = store
        self.session_for = session_for  # account id -> boto3 session able to change IAM there
        self.protected = protected or []
        self.own_arn = own_arn
        self.mode = mode
        self.allow_org_access = allow_org_access

    def _iam(self, account: str) -> Any:
        return self.session_for(account).client("iam")

    def _save(self, record: dict) -> None:
        self.store.con.execute("INSERT OR REPLACE INTO actions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            record["id"], record["created_at"], record["kind"], record["identity"], record["account_id"],
            record.get("incident_id"), record["status"], record["actor"], record.get("reason"),
            orjson.dumps(record).decode()])

    def execute(self, plan: Plan, *, reason: str, incident_id: str | None = None,
                finding_ids: list[str] | None = None, allow_org_access: bool | None = None) -> Outcome:
        allow = self.allow_org_access if allow_org_access is None else allow_org_access
        guard(plan.target, own_arn=self.own_arn, protected=self.protected, allow_org_access=allow)
        action = ACTIONS[plan.kind]
        now = datetime.now(timezone.utc)
        digest = hashlib.blake2b(f"{plan.kind}|{plan.target.arn}|{now.isoformat()}".encode(), digest_size=6).hexdigest()
        record = {"id": f"act-{digest}", "created_at": now.isoformat(), "kind": plan.kind, "identity": plan.target.arn,
                  "account_id": plan.target.account_id, "incident_id": incident_id, "finding_ids": finding_ids or [],
                  "reason": reason, "mode": self.mode, "actor": f"{getpass.getuser()} as {self.own_arn or 'unknown'}",
                  "summary": plan.summary, "options": plan.options, "calls": [c.to_dict() for c in plan.calls],
                  "status": "started", "before": None, "done": [], "error": None, "undo": None}
        self._save(record)  # recorded before anything is read or changed
        if not action.changes_aws:
            record["status"] = "executed"
            self._save(record)
            return Outcome(record)
        iam = None
        try:
            iam = self._iam(plan.target.account_id)
            record["before"] = plain(action.snapshot(iam, plan))
        except Exception as error:  # noqa: BLE001 - reported per action, nothing was changed
            record.update(status="failed", error=problem("reading the state before", error))
            self._save(record)
            return Outcome(record)
        self._save(record)
        self._run(iam, plan.calls, record, "done")
        record["status"] = "executed" if record["error"] is None else ("partial" if record["done"] else "failed")
        self._save(record)
        return Outcome(record)

    def _run(self, iam: Any, calls: list[Call], record: dict, into: str) -> None:
        target = record if into == "done" else record["undo"]
        for call in calls:
            try:
                response = getattr(iam, call.method)(**call.params)
            except Exception as error:  # noqa: BLE001 - AWS errors are reported on the action
                target["error"] = problem(call.method, error)
                return
            target[into].append({**call.to_dict(), "response": _response(response)})
            self._save(record)

    def undo(self, action_id: str) -> Outcome:
        record = undoable(self.store, action_id)
        plan = plan_of(record)
        done = [Call.from_dict(c) for c in record["done"]]
        calls = ACTIONS[record["kind"]].undo(plan, record["before"] or {}, done)
        secret = next((c.params["Password"] for c in calls if "Password" in c.params), None)
        shown = [c.redacted() for c in calls]
        record["undo"] = {"at": datetime.now(timezone.utc).isoformat(), "by": getpass.getuser(),
                          "calls": [c.to_dict() for c in shown], "done": [], "error": None}
        self._save(record)
        if calls:
            iam = self._iam(record["account_id"])
            for call, visible in zip(calls, shown):
                try:
                    getattr(iam, call.method)(**call.params)
                except Exception as error:  # noqa: BLE001
                    record["undo"]["error"] = problem(call.method, error)
                    break
                record["undo"]["done"].append(visible.to_dict())
                self._save(record)
        record["status"] = "undone" if record["undo"]["error"] is None else "undo-failed"
        self._save(record)
        return Outcome(record, secret if record["status"] == "undone" else None)


def undoable(store: Store, action_id: str) -> dict:
    """The record of an action that can be undone. Asked before any AWS session is made, so an unknown
    id is said to be unknown (UnknownAction), not "no credentials"."""
    record = get_action(store, action_id)
    if record is None:
        raise UnknownAction(f"no action {action_id} (nhiwatch respond list)")
    if record["status"] not in ("executed", "partial", "undo-failed"):
        raise ActionError(f"action {action_id} is {record['status']}: nothing to undo")
    return record


def plan_of(record: dict) -> Plan:
    target = Target.from_arn(record["identity"], (record.get("options") or {}).get("role_id"))
    return Plan(record["kind"], target, [Call.from_dict(c) for c in record["calls"]], record.get("summary", ""),
                record.get("options") or {})


def list_actions(store: Store, *, identity: str | None = None) -> list[dict]:
    if not store.has_table("actions"):
        return []
    where, params = ("WHERE identity = ?", [identity]) if identity else ("", [])
    rows = store.con.execute(f"SELECT action FROM actions {where} ORDER BY created_at DESC", params).fetchall()
    return [orjson.loads(text) for (text,) in rows]


def get_action(store: Store, action_id: str) -> dict | None:
    if not store.has_table("actions"):
        return None
    row = store.con.execute("SELECT action FROM actions WHERE id = ?", [action_id]).fetchone()
    return orjson.loads(row[0]) if row else None
