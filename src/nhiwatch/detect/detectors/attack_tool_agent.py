"""Calls made with a known offensive-security tool or distribution in the user agent."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect.detectors.base import Detector, Hit, Look


class AttackToolAgent(Detector):
    id = "attack-tool-agent"
    title = "Offensive tool in the user agent"
    tactic = "initial-access"
    mitre = ("T1078.004",)
    guardduty = ("PenTest:IAMUser/KaliLinux", "PenTest:IAMUser/ParrotLinux", "PenTest:IAMUser/PentooLinux")
    description = "A user agent naming Pacu, Stratus Red Team, Kali, Parrot, Pentoo and the like. High."
    behavioural = False

    def check(self, look: Look) -> Iterable[Hit]:
        ev = look.ev
        if ev.inbound or not look.agent.startswith("tool:"):
            return
        yield Hit("high", 0.9, f"{look.info.arn} was used with {look.agent[5:]}: {look.what()}. {look.normally()}",
                  {"user_agent": ev.agent}, key=look.agent)
