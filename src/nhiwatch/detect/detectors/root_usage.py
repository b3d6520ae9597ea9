"""The account root user at work: AWS advises locking it away; an access key on it is worse."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look


class RootUsage(Detector):
    id = "root-usage"
    title = "Root user activity"
    tactic = "privilege-escalation"
    mitre = ("T1078.004",)
    guardduty = ("Policy:IAMUser/RootCredentialUsage",)
    description = "Any call by the root user: medium; high with a root access key (AKIA...) or from a new network."
    behavioural = False
    routine = True

    cases = (
        c.positive("root-access-key-from-the-internet",
                   "a root access key, left in an old script, used with the CLI from outside",
                   c.each(c.Caller(c.root_user(key="AKIAEXAMPLEROOTKEY01"), c.ATTACKER, c.ATTACKER_CLI),
                          ["s3:ListBuckets", "ec2:DescribeInstances"]),
                   severity="high"),
        c.negative("load-balancer-acts-as-root",
                   "Elastic Load Balancing scaling: CloudTrail records its network-interface calls as the root user "
                   "invoked by elasticloadbalancing.amazonaws.com, from the service itself",
                   c.each(c.Caller(c.root_user(invoked_by="elasticloadbalancing.amazonaws.com"), "", ""),
                          [c.Call("ec2:DeleteNetworkInterface", {"networkInterfaceId": "eni-0abcd1234ef567890"}),
                           c.Call("ec2:CreateNetworkInterface", {"subnetId": "subnet-0abc1234"})]),
                   severity="low"),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev = look.ev
        if ev.inbound or ev.caller_type != "root" or ev.ip_kind == "aws_service":
            return
        with_key = bool(ev.key and ev.key.startswith("AKIA"))
        severity = "high" if with_key or look.new.get("net") else "medium"
        yield Hit(severity, 0.8, f"the root user of account {ev.account} called {ev.api}"
                  + (" with a root access key" if with_key else "") + f": {look.what()}. {look.normally()}",
                  {"access_key": ev.key if with_key else None}, key="root")
