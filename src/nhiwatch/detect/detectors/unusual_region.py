"""Activity in a region the identity never used (attackers favour regions nobody watches)."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import pool_region


class UnusualRegion(Detector):
    id = "unusual-region"
    title = "Activity in a region the identity never used"
    tactic = "defense-evasion"
    mitre = ("T1535",)
    stratus = ("aws.execution.ec2-launch-unusual-instances",)
    change_aware = True
    description = ("A call in a region new to a mature identity that used at most 3 regions. Low; medium for a "
                   "write call from a new network too, unless that network is AWS's own in the same region and the "
                   "client is the usual one (a workload moved there: a rollout, a DR drill).")

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or not ev.region or not look.new.get("region") or not profile.mature:
            return
        if len(profile.facets["region"]) > 3 or ev.api.startswith(("sts:", "iam:", "s3:", "organizations:")):
            return
        # Its workload moved (a DR drill, a rollout): the call comes from AWS's addresses in that very region
        # with its usual client. Someone else would call from their own network.
        moved = pool_region(look.net) == ev.region and not look.new.get("agent")
        severity = "medium" if look.new.get("net") and not ev.read_only and not moved else "low"
        yield Hit(severity, 0.4, f"{look.info.arn} called {ev.api} in {ev.region}; it only used "
                                 f"{', '.join(r for r, _ in profile.top('region', 3))} before. {look.what()}.",
                  {"region": ev.region, "known_regions": [r for r, _ in profile.top("region", 5)]}, key=ev.region)
