"""Response as the CLI uses it: AWS sessions per account, plans for incidents, and the automatic mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from nhiwatch.correlate.incidents import get_incident, list_incidents
from nhiwatch.respond.executor import Refused, Responder, guard
from nhiwatch.respond.playbooks import Proposal, plan_incident
from nhiwatch.respond.policy import ResponsePolicy
from nhiwatch.store.db import Store


class AwsUnavailable(RuntimeError):
    """No usable AWS credentials for the account an action needs."""


def aws_sessions(profile: str | None, role_name: str | None, external_id: str | None
                 ) -> tuple[Callable[[str], Any], str]:
    """(account -> boto3 session, the ARN nhiwatch runs as). With role_name, the role is assumed in an
    account other than the caller's own."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from nhiwatch.inventory.live import account_sessions

    try:
        base = boto3.Session(profile_name=profile)
        caller = base.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        raise AwsUnavailable(f"cannot reach AWS: {error}") from None
    cache: dict[str, Any] = {caller["Account"]: base}

    def session_for(account: str) -> Any:
        if account not in cache:
            if not role_name:
                raise AwsUnavailable(f"account {account} is not the caller's ({caller['Account']}): give --role-name "
                                     "to assume a response role there")
            _label, session, problem = next(iter(account_sessions(
                profile=profile, role_name=role_name, account_ids=[account], external_id=external_id,
                session_name="nhiwatch-respond")))
            if session is None:
                raise AwsUnavailable(problem or f"no session for account {account}")
            cache[account] = session
        return cache[account]

    return session_for, caller["Arn"]


def incident_proposals(store: Store, incident_id: str, protected: list[str], own_arn: str | None = None,
                       allow_org_access: bool = False) -> tuple[dict, list[Proposal]]:
    incident = get_incident(store, incident_id)
    if incident is None:
        raise LookupError(f"no incident {incident_id} (nhiwatch incidents list)")
    proposals = plan_incident(store, incident, allow_org_access=allow_org_access)
    for proposal in proposals:
        if proposal.plan is not None and proposal.refused is None:
            try:
                guard(proposal.plan.target, own_arn=own_arn, protected=protected, allow_org_access=allow_org_access)
            except Refused as refusal:
                proposal.refused = str(refusal)
    return incident, proposals


@dataclass
class AutoDecision:
    incident_id: str
    proposal: Proposal
    allowed: bool
    rule: str | None = None
    skipped: str | None = None
    record: dict | None = None

    def to_dict(self) -> dict:
        return {"incident_id": self.incident_id, **self.proposal.to_dict(), "allowed": self.allowed,
                "rule": self.rule, "skipped": self.skipped,
                "status": self.record["status"] if self.record else None,
                "action_id": self.record["id"] if self.record else None,
                "error": self.record.get("error") if self.record else None}


@dataclass
class AutoResult:
    decisions: list[AutoDecision] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(d.record and d.record["status"] in ("failed", "partial") for d in self.decisions)


def auto_respond(store: Store, policy: ResponsePolicy, responder: Responder | None) -> AutoResult:
    """Every open incident's proposals, filtered by the policy; executed when a responder is given
    (otherwise a dry-run of what would be done). An action already taken for the same incident,
    identity and options is not taken again."""
    result = AutoResult()
    own = responder.own_arn if responder else None
    for summary in list_incidents(store, min_severity="medium"):
        incident, proposals = incident_proposals(store, summary["id"], policy.protected, own,
                                                 policy.allow_organization_access_role)
        detectors_of: dict[str, set[str]] = {}
        for finding in incident["findings"]:
            detectors_of.setdefault(finding["identity"]["arn"], set()).add(finding["detector"])
        taken = {(r[0], r[1], r[2]) for r in store.con.execute(
            """SELECT identity, kind, json_extract_string(action, '$.options') FROM actions
               WHERE incident_id = ? AND status IN ('executed', 'partial', 'started')""", [incident["id"]]).fetchall()}
        for proposal in proposals:
            if proposal.plan is None or proposal.refused:
                result.decisions.append(AutoDecision(incident["id"], proposal, False, skipped=proposal.refused))
                continue
            rule = policy.allowed(proposal.kind, incident["severity"], proposal.identity,
                                  detectors_of.get(proposal.identity, set()))
            if rule is None:
                result.decisions.append(AutoDecision(incident["id"], proposal, False,
                                                     skipped="no [[allow]] rule in the policy permits it"))
                continue
            options = orjson.dumps(proposal.plan.options).decode()
            if any(t[0] == proposal.identity and t[1] == proposal.kind and _same_options(t[2], options)
                   for t in taken):
                result.decisions.append(AutoDecision(incident["id"], proposal, True, _describe(rule),
                                                     skipped="already done for this incident"))
                continue
            decision = AutoDecision(incident["id"], proposal, True, _describe(rule))
            if responder is not None:
                decision.record = responder.execute(
                    proposal.plan, reason=f"auto: {proposal.why}", incident_id=incident["id"],
                    finding_ids=proposal.finding_ids,
                    allow_org_access=policy.allow_organization_access_role).record
            result.decisions.append(decision)
    return result


def _same_options(stored: str | None, planned: str) -> bool:
    if stored is None:
        return planned == "{}"
    a, b = orjson.loads(stored), orjson.loads(planned)
    a.pop("issued_before", None)  # a revocation's cut-off is "now" each time; the intent is the same
    b.pop("issued_before", None)
    return a == b


def _describe(rule) -> str:
    return (f"allow {', '.join(rule.actions)} at {rule.min_severity}+ for {', '.join(rule.identities)} "
            f"on {', '.join(rule.detectors)}")
