"""Destructive or costly actions new to the identity."""

from __future__ import annotations

from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


class Impact(SensitiveFirstUse):
    id = "impact-first-use"
    title = "Destructive or costly actions new to the identity"
    tactic = "impact"
    tactics = ("impact",)
    mitre = ('T1485', 'T1496')
    guardduty = ('Impact:IAMUser/AnomalousBehavior',)
    description = ("The first call of a impact API (docs/detectors.md lists them) by an identity, or by its "
                   "peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code); low without "
                   "history or peers, except calls that blind defences.")
