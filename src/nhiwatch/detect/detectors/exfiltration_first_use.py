"""Data-sharing and copy actions new to the identity."""

from __future__ import annotations

from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


class ExfiltrationFirstUse(SensitiveFirstUse):
    id = "exfiltration-first-use"
    title = "Data-sharing and copy actions new to the identity"
    tactic = "exfiltration"
    change_aware = False  # judged by what it does, a deploy does not explain it
    tactics = ("exfiltration",)
    mitre = ('T1537',)
    guardduty = ('Exfiltration:IAMUser/AnomalousBehavior', 'Policy:IAMUser/S3BlockPublicAccessDisabled')
    description = ("The first call of a exfiltration API (docs/detectors.md lists them) by an identity, or by its "
                   "peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code); low without "
                   "history or peers, except calls that blind defences.")
