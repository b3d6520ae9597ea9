"""Credentials used from a network and with a client the identity has never used: the classic sign
of a stolen key or session in someone else's hands."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import network_class


# An EKS controller's IRSA role: a Go SDK with no runtime mark, through the cluster's NAT.
CONTROLLER = c.Caller(c.role_session("cluster-autoscaler", "1709251200987654321"), c.NAT_US_EAST_1,
                      "aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)")
CONTROLLER_HABIT = c.habit(CONTROLLER, "autoscaling:DescribeAutoScalingGroups", "ec2:DescribeLaunchTemplateVersions",
                           every=600)
LINUX_CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0-18-cloud-amd64 exe/x86_64.debian.12 prompt/off"
MACHINE_NATS = 6.0  # surprise of a new client family: fewer than one in 400 calls brought a new one


class UnfamiliarContext(Detector):
    id = "unfamiliar-context"
    hostile = True
    title = "Credentials used from a new network with a new client"
    tactic = "initial-access"
    mitre = ("T1078.004",)
    guardduty = ("InitialAccess:IAMUser/AnomalousBehavior",)
    description = ("A call from a /24 network and a client family the identity never used. The strength is "
                   "the surprise of both given how often the identity meets new ones (Good-Turing): medium when "
                   "both are rare events for it and the /16 is new too, or when the identity is a machine (one "
                   "client for hundreds of calls) now in another pool of its cloud with another client; low "
                   "otherwise. One finding per network.")

    cases = (
        c.positive("backup-key-from-a-tor-exit-with-a-new-client",
                   "the backup job's static key, copied off its server, used from a Tor exit with the CLI instead of "
                   "the job's boto3",
                   c.each(c.BACKUP_BOT.but(ip=c.TOR_EXIT, agent=c.ATTACKER_CLI),
                          ["sts:GetCallerIdentity", "s3:ListBuckets"]),
                   [c.BACKUP_HABIT]),
        c.positive("cluster-controller-role-from-another-region-with-the-cli",
                   "an EKS controller's role (one Go SDK client, one NAT, every ten minutes) used from an EC2 "
                   "address in another region with the AWS CLI: an intruder's own instance",
                   c.each(CONTROLLER.but(ip=c.EU_WEST_3, agent=LINUX_CLI), ["sts:GetCallerIdentity", "iam:ListRoles"]),
                   [CONTROLLER_HABIT]),
        c.negative("cluster-controller-in-the-dr-region",
                   "the same controller running in the disaster-recovery region during a drill: another pool, the "
                   "same client",
                   c.each(CONTROLLER.but(ip=c.EU_WEST_3), CONTROLLER_HABIT.calls), [CONTROLLER_HABIT]),
        c.negative("data-centre-egress-address-changes",
                   "the data centre's egress moving to another address block of the same provider (a new uplink): the "
                   "same job with the same client",
                   c.each(c.BACKUP_BOT.but(ip="81.2.70.14"), c.BACKUP_HABIT.calls), [c.BACKUP_HABIT]),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or not (look.new.get("net") and look.new.get("agent")) or look.net.startswith(("service:", "vpce:")):
            return
        if not profile.mature or look.actor not in ("tool", "console"):
            return  # AWS services and agents act from AWS's networks; runtime-marked code is the workload's
        surprise = profile.surprise("net") + profile.surprise("agent")
        strength = min(1.0, surprise / 12)
        # A machine: one client for hundreds of calls. Its client changes only with its code, and then
        # not together with its network; a person's tool in another pool is someone else's hands.
        machine = profile.surprise("agent") >= MACHINE_NATS
        # A new /16 too means a different provider or place, not a neighbour in the same pool.
        severity = "medium" if surprise >= 7 and (look.new.get("wide_net") or machine) else "low"
        if not machine and network_class(look.net) == "aws" and \
                any(network_class(n) == "aws" for n in profile.facets["net"]):
            severity = "low"  # another pool of the cloud it already runs in: a region, a NAT, a new host
        yield Hit(severity, strength, f"{look.info.arn} was used from an unfamiliar place: {look.what()}. "
                                      f"{look.normally()}",
                  {"network": look.net, "agent": look.agent, "surprise_nats": round(surprise, 1),
                   "known_networks": len(profile.facets["net"]), "known_agents": len(profile.facets["agent"]),
                   "network_class": network_class(look.net)},
                  key=look.net)
