"""Sensitive discovery calls new to a stable identity."""

from __future__ import annotations

from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


class DiscoveryFirstUse(SensitiveFirstUse):
    id = "discovery-first-use"
    title = "Sensitive discovery calls new to a stable identity"
    tactic = "discovery"
    tactics = ("discovery",)
    mitre = ('T1087.004', 'T1580')
    guardduty = ('Discovery:IAMUser/AnomalousBehavior',)
    description = ("The first call of a discovery API (docs/detectors.md lists them) by an identity, or by its "
                   "peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code); low without "
                   "history or peers, except calls that blind defences.")
