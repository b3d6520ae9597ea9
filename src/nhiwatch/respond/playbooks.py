"""Which actions an incident calls for, identity by identity, with every fact the plans need taken
from the store: the keys and sessions the findings' events used, the baseline networks and subjects
learned before the incident began, the role's unique id and trust policy from the inventory.

The choice follows the identity's kind and what was seen:
- a user whose long-term key made the calls: deactivate that key; remove a console password an NHI
  should not have; quarantine when the incident is high or critical;
- a role: deny the one session when only one was used, else revoke every older session; fence a
  workload with stable networks to them when the calls came from elsewhere; limit a CI/CD role's
  web-identity trust to its known subjects when a new subject assumed it;
- an identity that only handed out the credentials (a pivot) gets the same treatment, as the root cause;
- root, service-linked roles and incidents below medium: notify only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from nhiwatch.inventory.model import Identity
from nhiwatch.inventory.persist import get_identity
from nhiwatch.correlate.incidents import us_of
from nhiwatch.detect.finding import severity_rank
from nhiwatch.detect.profile import Profile
from nhiwatch.respond.actions import ACTIONS, ActionError, Plan, Target
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

    def to_dict(self) -> dict:
        out = {"identity": self.identity, "action": self.kind, "why": self.why, "refused": self.refused,
               "finding_ids": self.finding_ids}
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


def _event_facts(store: Store, event_ids: list[str]) -> tuple[set[str], set[str]]:
    """Long-term keys and role sessions the events used."""
    rows = store.con.execute("SELECT DISTINCT access_key_id, session FROM events WHERE event_id IN (SELECT unnest(?))",
                             [event_ids]).fetchall() if event_ids else []
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
        return Proposal(target.arn, kind, ACTIONS[kind].plan(target, options), why, finding_ids=findings)
    except ActionError as error:
        return Proposal(target.arn, kind, None, why, refused=str(error), finding_ids=findings)


def plan_incident(store: Store, incident: dict) -> list[Proposal]:
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
        try:
            known = known_identity(store, arn)
            target = Target.from_arn(arn, known.unique_id if known else None)
        except ActionError:
            continue  # a web-identity or SAML subject, another account: named in the incident, not acted on
        detectors = {f["detector"] for f in findings}
        why_base = (", ".join(sorted(detectors)) if detectors else
                    "handed out the credentials the other identities misused")
        if not alerting or target.kind == "root" or target.service_linked:
            reason = ("root is changed by its owner, not by API" if target.kind == "root" else
                      "service-linked roles belong to AWS" if target.service_linked else "incident below medium")
            proposals.append(_propose("notify", target, {"why": reason}, reason, ids))
            continue
        keys, sessions = _event_facts(store, [e for f in findings for e in f["event_ids"]])
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
    events = [link["event_id"] for link in incident.get("links", []) if link["kind"] == "key-lineage"
              and link.get("event_id")]
    if not events:
        return out
    rows = store.con.execute("SELECT principal, access_key_id FROM events WHERE event_id IN (SELECT unnest(?))",
                             [events]).fetchall()
    for principal, key in rows:
        if key and key.startswith("AKIA"):
            out.setdefault(principal, set()).add(key)
    return out
