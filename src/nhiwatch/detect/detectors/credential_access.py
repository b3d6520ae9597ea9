"""Secrets, parameters or passwords read for the first time."""

from __future__ import annotations

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


class CredentialAccess(SensitiveFirstUse):
    id = "credential-access-first-use"
    title = "Secrets, parameters or passwords read for the first time"
    tactic = "credential-access"
    tactics = ("credential-access",)
    mitre = ('T1555.006', 'T1552')
    guardduty = ('CredentialAccess:IAMUser/AnomalousBehavior',)
    description = ("The first call of a credential-access API (docs/detectors.md lists them) by an identity, or by its "
                   "peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code); low without "
                   "history or peers, except calls that blind defences.")
    cases = (
        c.positive("ci-key-fetches-windows-passwords",
                   "the CI key used from outside to fetch a Windows instance's administrator password",
                   [c.CI_THIEF.call(c.at(0), "ec2:GetPasswordData",
                                                                           {"instanceId": c.OTHER_INSTANCE})],
                   [c.CI_HABIT], severity="high"),
        c.negative("release-moves-a-setting-to-parameter-store",
                   "a release moves one setting to Parameter Store: the task reads it from its usual network with its "
                   "usual SDK",
                   [c.ECS_TASK.call(c.at(0), "ssm:GetParameter", {"name": "/orders/flags", "withDecryption": True})],
                   [c.ECS_HABIT]),
    )
