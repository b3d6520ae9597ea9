"""The shared rule behind the tactic detectors: the first call of a sensitive API by an identity
(or, while it is young, by its peer group), weighted by the API's weight and by how stable the
identity is. Each tactic is its own small detector module built on this."""

from __future__ import annotations

from typing import ClassVar, Iterable

from nhiwatch.core.severity import SEVERITIES
from nhiwatch.detect.catalog import sensitive
from nhiwatch.detect.detectors.base import Detector, Hit, Look, stable_weight



# IAM writes judged by what they grant (iam_permission_change.py), not by being new.
IAM_CONTENT_APIS = frozenset("""
    iam:PutUserPolicy iam:PutRolePolicy iam:PutGroupPolicy iam:CreatePolicyVersion iam:SetDefaultPolicyVersion
    iam:AttachUserPolicy iam:AttachRolePolicy iam:AttachGroupPolicy iam:UpdateAssumeRolePolicy iam:CreateRole
    iam:CreateAccessKey iam:CreateLoginProfile iam:UpdateLoginProfile iam:AddUserToGroup iam:CreateUser
    iam:PutUserPermissionsBoundary iam:DeleteUserPermissionsBoundary iam:DeleteRolePermissionsBoundary""".split())


# Calls that blind or cut off the organisation's defences: alarming even from an identity with no
# history (cold start), since no workload's first hour legitimately stops a trail or deletes a detector.
BLINDING = frozenset("""
    cloudtrail:StopLogging cloudtrail:DeleteTrail ec2:DeleteFlowLogs guardduty:DeleteDetector
    securityhub:DisableSecurityHub config:StopConfigurationRecorder config:DeleteConfigurationRecorder
    organizations:LeaveOrganization route53resolver:DeleteResolverQueryLogConfig cloudtrail:DeleteEventDataStore
    cloudtrail:StopEventDataStoreIngestion macie2:DisableMacie inspector2:Disable detective:DeleteGraph
    access-analyzer:DeleteAnalyzer""".split())


class SensitiveFirstUse(Detector):
    tactics: ClassVar[tuple[str, ...]]
    change_aware = True

    def check(self, look: Look) -> Iterable[Hit]:
        ev = look.ev
        entry = sensitive(ev.api)
        if ev.inbound or entry is None or entry.tactic not in self.tactics or not look.new.get("api"):
            return
        if ev.api in IAM_CONTENT_APIS:
            return
        stability = stable_weight(look.profile)
        level = {3: 3 if stability >= 0.3 else 2, 2: 2 if stability >= 0.5 else 1, 1: 1}[entry.weight]
        if entry.weight == 1 and not look.profile.mature:
            return
        context = [facet for facet in ("net", "agent") if look.new.get(facet)]
        if len(context) == 2 and entry.weight >= 2:
            level = min(3, level + 1)  # a new API from a new place with a new client: someone else's hands
        if ev.error:
            level -= 1  # an attempt that failed: still worth knowing, less urgent
        cold = not look.profile.mature and look.peers is None and ev.api not in BLINDING
        if cold:
            level = 0  # no history and no peers: nothing to deviate from; a step for sequences, not a finding
        if look.usual_context and (entry.weight <= 2 or look.actor in ("workload", "aws-agent")):
            level = min(level, 1)  # from its usual network with its usual client: a release, not someone else's hands
        if level <= 0 and not cold:
            return
        strength = min(1.0, 0.35 * entry.weight * (0.5 + stability) + 0.15 * len(context))
        yield Hit(SEVERITIES[level], strength,  # level 0..3: info .. high
                  f"{look.info.arn} called {ev.api} for the first time ({entry.tactic})"
                  + (f", and it failed with {ev.error}" if ev.error else "") + f": {look.what()}. "
                  f"{look.normally()}",
                  {"api": ev.api, "weight": entry.weight, "stability": round(stability, 2),
                   "new_context": context, "error": ev.error, "cold_start": cold},
                  key=ev.api, mitre=entry.mitre, stratus=entry.stratus)
