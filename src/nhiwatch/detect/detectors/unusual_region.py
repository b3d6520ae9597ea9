"""Activity in a region the identity never used (attackers favour regions nobody watches)."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
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

    cases = (
        c.positive("task-keys-prepare-an-unwatched-region",
                   "the task's credentials used from outside to import a key pair and open a security group in a "
                   "region the company never uses",
                   c.each(c.ECS_TASK.but(ip=c.ATTACKER, agent=c.ATTACKER_CLI, region="ap-southeast-3"), [
                       c.Call("ec2:ImportKeyPair", {"keyName": "k"}),
                       c.Call("ec2:CreateSecurityGroup", {"groupName": "default-2", "groupDescription": "x"})]),
                   [c.ECS_HABIT]),
        c.negative("disaster-recovery-drill-in-eu-west-3",
                   "a disaster-recovery drill: the service runs in eu-west-3 for a day, calling from AWS's addresses "
                   "there with its usual SDK",
                   c.each(c.ECS_TASK.but(ip=c.EU_WEST_3, region="eu-west-3"), [
                       c.Call("sqs:ReceiveMessage", {"queueUrl": c.queue("orders", "eu-west-3")}),
                       c.Call("dynamodb:Query", {"tableName": "orders"}),
                       c.Call("dynamodb:PutItem", {"tableName": "orders"})]),
                   [c.ECS_HABIT]),
    )

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
