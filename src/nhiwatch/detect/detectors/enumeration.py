"""Discovery in bulk: many different List/Describe/Get calls across services in a few minutes,
most of them new to the identity."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect.detectors.base import Detector, Hit, Look

MIN_APIS = 12
MIN_SERVICES = 3


class Enumeration(Detector):
    id = "enumeration"
    title = "Bulk discovery across services"
    tactic = "discovery"
    mitre = ("T1087.004", "T1580", "T1526")
    stratus = ("aws.discovery.ec2-enumerate-from-instance",)
    guardduty = ("Discovery:IAMUser/AnomalousBehavior",)
    description = (f"In 15 minutes, at least {MIN_APIS} distinct read calls over at least {MIN_SERVICES} services, "
                   "of which at least half the identity never made before. Medium; high when it includes IAM or "
                   "organisation listing; low from the identity's usual network and client with nothing denied. "
                   "AWS service-linked roles and known vendors' roles sweep by design: low.")

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or not look.new.get("api") or not ev.name.startswith(("List", "Describe", "Get")):
            return
        reads = {w[1] for w in profile.window if w[3]} | {ev.api}
        if len(reads) < MIN_APIS:
            return
        services = {api.split(":", 1)[0] for api in reads}
        novel = [api for api in reads if profile.count("api", api) <= 1]
        if len(services) < MIN_SERVICES or len(novel) * 2 < len(reads):
            return
        severity = "high" if any(a.startswith(("iam:", "organizations:")) for a in novel) else "medium"
        denied = sum(1 for w in profile.window if w[2])
        if look.usual_context and not denied:
            severity = "low"  # its usual client from its usual network, nothing denied: a new job, not a stranger
        yield Hit(severity, min(1.0, len(novel) / 30), f"{look.info.arn} made {len(reads)} different read calls "
                  f"over {len(services)} services in 15 minutes, {len(novel)} of them new: {', '.join(sorted(novel)[:8])}"
                  f"... {look.what()}. {look.normally()}",
                  {"distinct_reads": len(reads), "services": sorted(services), "new_apis": sorted(novel),
                   "denied_in_window": denied},
                  key="enumeration")
