"""Sensitive discovery calls new to a stable identity."""

from __future__ import annotations

from nhiwatch.detect import cases as c
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
    cases = (
        c.positive("instance-user-data-read-with-a-new-client",
                   "someone with a shell on the instance reads instances' user data (where bootstrap secrets hide) "
                   "with the CLI: the instance's network, but not its application's SDK",
                   [c.EC2_APP.but(agent=c.ATTACKER_CLI).call(c.at(0), "ec2:DescribeInstanceAttribute",
                                                            {"instanceId": c.OTHER_INSTANCE, "attribute": "userData"})],
                   [c.EC2_HABIT]),
        c.negative("release-reads-its-instance-attributes",
                   "a release of the application reads its instance's attributes at start-up, from its usual address "
                   "with its usual SDK",
                   [c.EC2_APP.call(c.at(0), "ec2:DescribeInstanceAttribute",
                                   {"instanceId": c.INSTANCE, "attribute": "instanceType"})],
                   [c.EC2_HABIT]),
    )
