"""Calls made with a known offensive-security tool or distribution in the user agent."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look


class AttackToolAgent(Detector):
    id = "attack-tool-agent"
    hostile = True
    title = "Offensive tool in the user agent"
    tactic = "initial-access"
    mitre = ("T1078.004",)
    guardduty = ("PenTest:IAMUser/KaliLinux", "PenTest:IAMUser/ParrotLinux", "PenTest:IAMUser/PentooLinux")
    description = "A user agent naming Pacu, Stratus Red Team, Kali, Parrot, Pentoo and the like. High."
    behavioural = False

    cases = (
        c.positive("cli-from-kali-linux",
                   "the CI key used with the CLI on Kali Linux (GuardDuty's PenTest:IAMUser/KaliLinux)",
                   c.each(c.CI_USER.but(ip=c.ATTACKER, agent="aws-cli/2.13.5 Python/3.11.4 Linux/6.3.0-kali1-amd64 "
                                                             "exe/x86_64.kali.2023 prompt/off"),
                          ["sts:GetCallerIdentity"]),
                   [c.CI_HABIT], severity="high"),
        c.negative("security-team-runs-prowler",
                   "the security team's audit role running Prowler (boto3 with Prowler's mark) from the office: an "
                   "audit tool, not an attack distribution",
                   c.each(c.Caller(c.role_session("security-audit", "prowler"), c.OFFICE,
                                   c.BOTO3 + " APN/1.0 Prowler/4.2.1"),
                          ["iam:GetAccountSummary", "iam:ListUsers", "cloudtrail:DescribeTrails", "s3:ListBuckets"]),
                   severity="low"),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev = look.ev
        if ev.inbound or not look.agent.startswith("tool:"):
            return
        yield Hit("high", 0.9, f"{look.info.arn} was used with {look.agent[5:]}: {look.what()}. {look.normally()}",
                  {"user_agent": ev.agent}, key=look.agent)
