"""An identity that has only ever called from cloud networks — AWS, GitHub-hosted runners, another
provider's published ranges, VPC endpoints, private addresses — suddenly calls from an address no
provider publishes: a home, an office, a VPS. Pipelines, functions, tasks and vendors' scanners run in
clouds; their credentials used from anywhere else are in someone's hands."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.actor import Actor
from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import network_class

CLOUD_CLASSES = ("aws", "cloud", "vpce", "private", "service")
MIN_CLOUD_SHARE = 0.99


class OffCloudUse(Detector):
    id = "cloud-identity-used-off-cloud"
    hostile = True
    title = "A cloud-only identity used from outside any cloud"
    tactic = "initial-access"
    mitre = ("T1078.004", "T1552")
    guardduty = ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
                 "InitialAccess:IAMUser/AnomalousBehavior")
    description = (f"A mature identity that made at least {MIN_CLOUD_SHARE:.0%} of its calls from cloud networks (AWS, "
                   "GitHub-hosted runners and other providers' published ranges, VPC endpoints, private addresses) "
                   "calls from an address no provider publishes, with a tool or console (not an AWS service or "
                   "agent). Medium; high when the client is new to it too. One finding per /24.")

    cases = (
        c.positive("ci-key-used-from-an-isp-address",
                   "the CI user's static key, leaked from the pipeline's secrets, used with the same CLI from an "
                   "address no cloud publishes",
                   c.each(c.CI_USER.but(ip=c.ATTACKER),
                          ["s3:ListBuckets", c.Call("s3:ListObjectsV2", {"bucketName": "artifacts"})]),
                   [c.CI_HABIT]),
        c.negative("ci-moves-to-self-hosted-runners-in-aws",
                   "the pipeline moving from GitHub-hosted runners to self-hosted runners in the company's VPC: the "
                   "same key and CLI from a NAT gateway's AWS address",
                   c.each(c.CI_USER.but(ip=c.NAT_US_EAST_1), c.CI_HABIT.calls), [c.CI_HABIT]),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or not profile.mature or look.actor not in (Actor.TOOL, Actor.CONSOLE):
            return
        if not look.new.get("net") or network_class(look.net) != "internet":
            return
        nets = profile.facets["net"]
        cloud = sum(entry[0] for net, entry in nets.items() if network_class(net) in CLOUD_CLASSES)
        total = sum(entry[0] for entry in nets.values())
        if not total or cloud / total < MIN_CLOUD_SHARE:
            return
        severity = "high" if look.new.get("agent") else "medium"
        pools = ", ".join(n for n, _ in profile.top("net", 3))
        yield Hit(severity, 0.85, f"{look.info.arn} only ever called from cloud networks ({pools}; {cloud:,} of "
                                  f"{total:,} calls), and now from {ev.ip}, an address no cloud provider publishes: "
                                  f"{look.what()}. {look.normally()}",
                  {"network": look.net, "cloud_share": round(cloud / total, 4), "agent": look.agent, "hostile": True},
                  key=look.net)
