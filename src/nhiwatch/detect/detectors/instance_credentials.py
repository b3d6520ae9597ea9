"""EC2 instance-role credentials used away from their instance. The instance's session is named after
the instance (i-...); the instance calls from its own addresses (private, a VPC endpoint, its public
or NAT address, all inside AWS, IPv4 and IPv6 alike). The same session from a network outside AWS, by
a client that is not an AWS agent, is someone who copied the credentials from the metadata service."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.actor import Actor
from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import network_class, pool_region


class InstanceCredentialsElsewhere(Detector):
    id = "instance-credentials-off-instance"
    hostile = True
    title = "Instance credentials used away from their instance"
    tactic = "credential-access"
    mitre = ("T1552.005", "T1078.004")
    stratus = ("aws.credential-access.ec2-steal-instance-credentials",)
    guardduty = ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
                 "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS")
    description = ("A role session named after an EC2 instance (i-...) used from a network outside AWS by a client "
                   "that is not an AWS agent: high from the first call, no history needed. From another AWS region's "
                   "addresses than the instance's own: medium. Dual-stack (IPv6 and IPv4 of the instance), VPC "
                   "endpoints and private addresses are the instance's own.")

    cases = (
        c.positive("imds-credentials-used-from-outside-aws",
                   "the instance role's session credentials, taken from the metadata service through an SSRF, are "
                   "used with the CLI from a network outside AWS (the Capital One pattern)",
                   c.each(c.EC2_APP.but(ip=c.ATTACKER_B, agent=c.ATTACKER_CLI),
                          ["sts:GetCallerIdentity", "s3:ListBuckets"]),
                   [c.EC2_HABIT], severity="high"),
        c.negative("instance-calls-through-its-nat-gateway",
                   "the instance reaching a public endpoint through its VPC's NAT gateway after a route change: its "
                   "own session, now from an AWS address of its region",
                   c.each(c.EC2_APP.but(ip=c.NAT_US_EAST_1), c.EC2_HABIT.calls), [c.EC2_HABIT]),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        session = ev.session or ""
        if ev.inbound or not session.startswith("i-") or look.actor in (Actor.SERVICE, Actor.AGENT):
            return
        where = network_class(look.net)
        known = profile.sessions.get(session) or []
        if where in ("internet", "cloud"):
            severity, place = "high", f"from outside AWS ({look.net})"
        elif where == "aws" and known and look.net not in known:
            regions = {pool_region(n) for n in known if network_class(n) == "aws"}
            if not regions or pool_region(look.net) in regions:
                return
            severity, place = "medium", f"from AWS addresses in another region ({look.net})"
        else:
            return
        yield Hit(severity, 0.9, f"the session {session} of {look.info.arn} (an EC2 instance's credentials) was used "
                                 f"{place} by {look.agent}"
                                 + (f", while the instance calls from {', '.join(known)}" if known else "")
                                 + f": {look.what()}. {look.normally()}",
                  {"session": session, "instance_networks": known, "network": look.net, "network_class": where,
                   "agent": look.agent, "hostile": True}, key=session)
