"""New credentials, users, roles or trust for later access."""

from __future__ import annotations

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


class Persistence(SensitiveFirstUse):
    id = "persistence-first-use"
    title = "New credentials, users, roles or trust for later access"
    tactic = "persistence"
    change_aware = False  # judged by what it does, a deploy does not explain it
    tactics = ("persistence",)
    mitre = ('T1098', 'T1136.003')
    guardduty = ('Persistence:IAMUser/AnomalousBehavior',)
    description = ("The first call of a persistence API (docs/detectors.md lists them) by an identity, or by its "
                   "peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code); low without "
                   "history or peers, except calls that blind defences.")
    cases = (
        c.positive("automation-key-mints-a-federation-token",
                   "the CI key used from outside mints a federation token, whose sessions outlive the key's rotation",
                   [c.CI_THIEF.call(c.at(0), "sts:GetFederationToken", {
                       "name": "backup", "durationSeconds": 129600, "policy": c.admin_policy()})],
                   [c.CI_HABIT], severity="high"),
        c.negative("pipeline-deploys-a-function",
                   "the pipeline's first deploy of a Lambda function's code, from its usual runners with its usual CLI",
                   [c.CI_USER.call(c.at(0), "lambda:UpdateFunctionCode20150331v2", {"functionName": "invoice-fn",
                                                                                    "publish": True})],
                   [c.CI_HABIT]),
    )
