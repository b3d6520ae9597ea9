"""Privilege escalation by an identity that never changes permissions."""

from __future__ import annotations

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


class PrivilegeEscalation(SensitiveFirstUse):
    id = "privilege-escalation-first-use"
    title = "Privilege escalation by an identity that never changes permissions"
    tactic = "privilege-escalation"
    change_aware = False  # judged by what it does, a deploy does not explain it
    tactics = ("privilege-escalation",)
    mitre = ('T1098.003',)
    guardduty = ('PrivilegeEscalation:IAMUser/AnomalousBehavior',)
    description = ("The first call of a privilege-escalation API (docs/detectors.md lists them) by an identity, or by its "
                   "peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code); low without "
                   "history or peers, except calls that blind defences.")
    cases = (
        c.positive("stolen-key-rolls-back-a-policy-version",
                   "the CI key used from outside makes an older, broader version of a managed policy the default "
                   "(SetDefaultPolicyVersion, a known escalation path)",
                   [c.CI_THIEF.call(c.at(0), "iam:SetDefaultPolicyVersion", {
                       "policyArn": f"arn:aws:iam::{c.ACCOUNT}:policy/ci-deploy", "versionId": "v1"})],
                   [c.CI_HABIT],
                   xfail="every privilege-escalation API of the catalogue is an IAM write that sensitive.py leaves to "
                         "iam-permission-change (IAM_CONTENT_APIS), so this detector has no API left and never fires"),
        c.negative("pipeline-publishes-its-policy-as-usual",
                   "the IaC pipeline publishing a new version of its service policy, as it does on every apply",
                   [c.CI_USER.call(c.at(0), "iam:CreatePolicyVersion", {
                       "policyArn": f"arn:aws:iam::{c.ACCOUNT}:policy/orders-api", "setAsDefault": True,
                       "policyDocument": c.scoped_policy("sqs:SendMessage")})],
                   [c.CI_HABIT, c.habit(c.CI_USER, c.Call("iam:CreatePolicyVersion", {
                       "policyArn": f"arn:aws:iam::{c.ACCOUNT}:policy/orders-api", "setAsDefault": True,
                       "policyDocument": c.scoped_policy("sqs:SendMessage")}), every=12 * 3600)]),
    )
