"""Which actions an incident calls for, identity by identity, with every fact the plans need taken
from the store: the keys and sessions the findings' events used, the baseline networks and subjects
learned before the incident began, the role's unique id and trust policy from the inventory.

The choice follows the identity's kind and what was seen:
- a user whose long-term key made the calls: deactivate that key; remove a console password an NHI
  should not have; quarantine when the incident is high or critical;
- a role: deny the one session when only one was used, else revoke every older session; fence a
  workload with stable networks to them when the calls came from elsewhere; limit a CI/CD role's
  web-identity trust to its known subjects when a new subject assumed it;
- root and incidents below medium: notify only.
Skipped, and listed as skipped with the reason (never silently dropped): AWS-managed roles (managed.py),
identities with no medium+ finding of their own in the incident (a pivot that only handed out the
credentials is named for a person to review, not changed), and principals that are not IAM users or roles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from nhiwatch.inventory.model import Identity
from nhiwatch.inventory.persist import get_identity
from nhiwatch.correlate.incidents import us_of
from nhiwatch.core.severity import severity_rank
from nhiwatch.detect.profile import Profile
from nhiwatch.respond.actions import ACTIONS, ActionError, Plan, Target
from nhiwatch.respond.managed import aws_managed
from nhiwatch.store.db import Store

WORKLOAD_TYPES = ("instance-profile-role", "service-role")  # roles a service runs as: their networks are stable
FENCE_DETECTORS = ("unfamiliar-context", "workload-credentials-outside-runtime", "instance-credentials-off-instance",
                   "attack-tool-agent")
OIDC_DETECTORS = ("new-web-identity-subject",)


@dataclass
class Proposal:
    """A planned action, or the reason there is none."""

    identity: str
    kind: str
    plan: Plan | None
    why: str
    refused: str | None = None
    finding_ids: list[str] = field(default_factory=list)
    skipped: str | None = None  # why nothing is planned on this identity (kind "skip"); also in refused
    account: str | None = None

    def to_dict(self) -> dict:
        out = {"identity": self.identity, "account": self.account, "action": self.kind, "why": self.why,
               "refused": self.refused, "skipped": self.skipped, "finding_ids": self.finding_ids}
        if self.plan is not None:
            out["summary"] = self.plan.summary
            out["calls"] = [c.to_dict() for c in self.plan.calls]
            out["cli"] = [c.cli() for c in self.plan.calls]
            out["options"] = self.plan.options
        return out


def known_identity(store: Store, arn: str) -> Identity | None:
    """The inventory's view of an identity, or None without an inventory or without that identity."""
    try:
        return get_identity(store, arn)
    except LookupError:  # no inventory (InventoryMissing), or a reference naming several identities
        return None


def _event_facts(store: Store, arn: str, event_ids: list[str]) -> tuple[set[str], set[str]]:
    """Long-term keys and role sessions the identity's events used (event ids are not unique in every
    source: another identity's event of the same id is not this one's evidence)."""
    rows = store.con.execute("""SELECT DISTINCT access_key_id, session FROM events
                                WHERE event_id IN (SELECT unnest(?)) AND principal = ?""",
                             [event_ids, arn]).fetchall() if event_ids else []
    keys = {k for k, _ in rows if k and k.startswith("AKIA")}
    sessions = {s for _, s in rows if s}
    return keys, sessions


def _baseline(store: Store, arn: str, before: str) -> tuple[list[str], list[str], list[str]]:
    """(public /24s, VPC endpoints, web-identity subjects) the identity used before the incident."""
    row = store.con.execute("SELECT state FROM profiles WHERE identity = ?", [arn]).fetchone()
    if row is None:
        return [], [], []
    profile = Profile.from_state(orjson.loads(row[0]))
    cutoff = us_of(before)
    earlier = {value for value, (_count, first) in profile.facets["net"].items() if first < cutoff}
    cidrs = sorted(v for v in earlier if v[:1].isdigit() and v.endswith("/24"))
    endpoints = sorted(v.split(":", 1)[1] for v in earlier if v.startswith("vpce:"))
    subjects = sorted(v for v, (_c, first) in profile.facets["subject"].items() if first < cutoff)
    return cidrs, endpoints, subjects


def _propose(kind: str, target: Target, options: dict, why: str, findings: list[str]) -> Proposal:
    try:
        return Proposal(target.arn, kind, ACTIONS[kind].plan(target, options), why, finding_ids=findings,
                        account=target.account_id)
    except ActionError as error:
        return Proposal(target.arn, kind, None, why, refused=str(error), finding_ids=findings,
                        account=target.account_id)


def _skip(arn: str, account: str | None, why: str, reason: str, findings: list[str]) -> Proposal:
    # "refused" too, so every consumer that acts only on unrefused plans (CLI, dashboard, auto) passes it by
    return Proposal(arn, "skip", None, why, refused=f"skipped: {reason}", finding_ids=findings, skipped=reason,
                    account=account)


def plan_incident(store: Store, incident: dict, *, allow_org_access: bool = False) -> list[Proposal]:
    findings_by_identity: dict[str, list[dict]] = {}
    for finding in incident.get("findings") or []:
        findings_by_identity.setdefault(finding["identity"]["arn"], []).append(finding)
    proposals: list[Proposal] = []
    alerting = severity_rank(incident["severity"]) >= severity_rank("medium")
    severe = severity_rank(incident["severity"]) >= severity_rank("high")
    pivot_keys = _pivot_keys(store, incident)
    for arn in incident["identities"]:
        findings = findings_by_identity.get(arn, [])
        ids = [f["id"] for f in findings]
        detectors = {f["detector"] for f in findings}
        why_base = (", ".join(sorted(detectors)) if detectors else
                    "handed out the credentials the other identities misused")
        try:
            known = known_identity(store, arn)
            target = Target.from_arn(arn, known.unique_id if known else None)
        except ActionError:
            # a web-identity or SAML subject: named in the incident, nothing of it to change in IAM
            proposals.append(_skip(arn, None, why_base, "not an IAM user or role: nothing to change in IAM", ids))
            continue
        managed = aws_managed(target, allow_org_access=allow_org_access)
        if managed:
            proposals.append(_skip(arn, target.account_id, why_base, f"AWS-managed: {managed}", ids))
            continue
        # Only an identity's own alerts justify changing it: one joined by a link alone (a pivot, or a
        # wrong join) is named for a person to review.
        if alerting and not any(severity_rank(f["severity"]) >= severity_rank("medium") for f in findings):
            pivot = arn in (incident.get("pivots") or []) or not findings
            proposals.append(_skip(arn, target.account_id, why_base, "no medium+ finding of its own in this incident"
                                   + (": it handed out credentials the others used; review it" if pivot else ""),
                                   ids))
            continue
        if not alerting or target.kind == "root":
            reason = "root is changed by its owner, not by API" if target.kind == "root" else "incident below medium"
            proposals.append(_propose("notify", target, {"why": reason}, reason, ids))
            continue
        keys, sessions = _event_facts(store, arn, [e for f in findings for e in f["event_ids"]])
        keys |= pivot_keys.get(arn, set())
        if target.kind == "user":
            for key in sorted(keys):
                proposals.append(_propose("deactivate-key", target, {"key": key},
                                          f"{key} made the calls ({why_base})", ids))
            if known and known.password_enabled and known.category != "human":
                proposals.append(_propose("disable-console", target, {}, "an NHI user with a console password", ids))
            if severe or not keys:
                proposals.append(_propose("quarantine", target, {}, f"incident is {incident['severity']}", ids))
            continue
        if len(sessions) == 1 and target.unique_id and not pivot_keys.get(arn):
            session = next(iter(sessions))
            proposals.append(_propose("revoke-session", target, {"session": session},
                                      f"only session {session} was misused ({why_base})", ids))
        else:
            proposals.append(_propose("revoke-sessions", target, {},
                                      f"{len(sessions) or 'unknown'} session(s) misused ({why_base})", ids))
        nhi_type = known.nhi_type if known else ""
        if detectors & set(FENCE_DETECTORS) and nhi_type in WORKLOAD_TYPES:
            cidrs, endpoints, _ = _baseline(store, arn, incident["first_seen"])
            proposals.append(_propose("network-fence", target, {"cidrs": cidrs, "vpc_endpoints": endpoints},
                                      "a workload used from outside its networks", ids))
        if detectors & set(OIDC_DETECTORS) or nhi_type == "oidc-role" and "initial-access" in incident["tactics"]:
            _, _, subjects = _baseline(store, arn, incident["first_seen"])
            proposals.append(_propose("tighten-oidc-trust", target, {"subjects": subjects,
                                                                     "trust": known.trust if known else None},
                                      "a web-identity subject outside the baseline assumed the role", ids))
        if severe and nhi_type not in WORKLOAD_TYPES:
            proposals.append(_propose("quarantine", target, {}, f"incident is {incident['severity']}", ids))
    return proposals


def _pivot_keys(store: Store, incident: dict) -> dict[str, set[str]]:
    """Long-term keys of pivot users that obtained the credentials the incident's calls used."""
    out: dict[str, set[str]] = {}
    handouts = {(link["event_id"], link["from"]) for link in incident.get("links", [])
                if link["kind"] == "key-lineage" and link.get("event_id")}
    if not handouts:
        return out
    rows = store.con.execute("""SELECT event_id, principal, access_key_id FROM events
                                WHERE event_id IN (SELECT unnest(?))""", [sorted({e for e, _ in handouts})]).fetchall()
    for event_id, principal, key in rows:
        if key and key.startswith("AKIA") and (event_id, principal) in handouts:
            out.setdefault(principal, set()).add(key)
    return out
