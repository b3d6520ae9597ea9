"""Commands or shells opened on other workloads."""

from __future__ import annotations

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


class LateralMovement(SensitiveFirstUse):
    id = "lateral-movement-first-use"
    title = "Commands or shells opened on other workloads"
    tactic = "lateral-movement"
    tactics = ("lateral-movement",)
    mitre = ('T1651', 'T1021')
    guardduty = ('Execution:IAMUser/AnomalousBehavior',)
    description = ("The first call of a lateral-movement API (docs/detectors.md lists them) by an identity, or by its "
                   "peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code); low without "
                   "history or peers, except calls that blind defences.")
    cases = (
        c.positive("stolen-ci-key-runs-commands-on-instances",
                   "the CI key used from outside sends a shell script to the fleet through SSM Run Command",
                   [c.CI_THIEF.call(c.at(0), "ssm:SendCommand", {
                       "documentName": "AWS-RunShellScript", "instanceIds": [c.OTHER_INSTANCE, c.INSTANCE],
                       "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS"})],
                   [c.CI_HABIT], severity="high"),
        c.negative("engineer-opens-a-session-manager-shell",
                   "an engineer, signed in through SSO, opens a Session Manager shell on an instance",
                   [c.SSO_PERSON.call(c.at(0), "ssm:StartSession", {"target": c.INSTANCE})],
                   [c.SSO_HABIT]),
    )
