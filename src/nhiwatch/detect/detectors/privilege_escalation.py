"""Privilege escalation by an identity that never does it: handing a privileged role to compute the
caller controls (the PassRole paths of the escalation catalogue) or taking a root session. IAM
writes are judged by what they grant, in iam_permission_change.py."""

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
    description = ("The first call of a privilege-escalation API that is not an IAM write (handing a role to compute "
                   "it controls: instance profiles, Glue and SageMaker endpoints, Data Pipeline, CodeBuild; "
                   "sts:AssumeRoot; docs/detectors.md lists them; IAM writes are iam-permission-change's) by an "
                   "identity, or by its peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code); low without "
                   "history or peers, except calls that blind defences.")
    cases = (
        c.positive("stolen-key-swaps-an-instance-profile",
                   "the CI key used from outside replaces an instance's profile with a more privileged role's, "
                   "to take that role's credentials from the instance (PassRole through EC2)",
                   [c.CI_THIEF.call(c.at(0), "ec2:ReplaceIamInstanceProfileAssociation", {
                       "associationId": "iip-assoc-0abc1234def567890",
                       "iamInstanceProfile": {"name": "admin-instance-profile"}})],
                   [c.CI_HABIT]),
        c.positive("stolen-key-opens-a-glue-dev-endpoint",
                   "the CI key used from outside creates a Glue development endpoint with a privileged role and its "
                   "own SSH key, a known way to act as that role",
                   [c.CI_THIEF.call(c.at(0), "glue:CreateDevEndpoint", {
                       "endpointName": "dev", "roleArn": f"arn:aws:iam::{c.ACCOUNT}:role/glue-admin",
                       "publicKey": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ attacker"})],
                   [c.CI_HABIT]),
        c.negative("pipeline-attaches-the-profile-it-always-attaches",
                   "the IaC pipeline associating the web tier's instance profile with a new instance, as every "
                   "rollout does, from its usual runner network with its usual client",
                   [c.CI_USER.call(c.at(0), "ec2:AssociateIamInstanceProfile", {
                       "instanceId": c.OTHER_INSTANCE, "iamInstanceProfile": {"name": "web-tier"}})],
                   [c.CI_HABIT, c.habit(c.CI_USER, c.Call("ec2:AssociateIamInstanceProfile", {
                       "instanceId": c.OTHER_INSTANCE, "iamInstanceProfile": {"name": "web-tier"}}), every=12 * 3600)]),
    )
