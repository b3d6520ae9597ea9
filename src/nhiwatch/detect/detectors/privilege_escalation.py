"""Privilege escalation by an identity that never changes permissions."""

from __future__ import annotations

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
