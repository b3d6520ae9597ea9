"""Compute launched for someone else's benefit: GPU or accelerated instance types, or many instances
at once, from an identity that does not launch such things."""

from __future__ import annotations

import json
import re
from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look

_ACCELERATED = re.compile(r'"instanceType"\s*:\s*"((?:p\d|g\d|inf\d|trn\d|dl\d|f\d|vt\d)[a-z0-9-]*\.[a-z0-9]+)"')
LAUNCHES = {"ec2:RunInstances", "ec2:RequestSpotInstances", "ec2:RequestSpotFleet", "ec2:CreateFleet"}


def _count(params: str) -> int:
    try:
        data = json.loads(params)
    except ValueError:
        return 0
    items = data.get("instancesSet", {}).get("items", [{}]) if isinstance(data, dict) else [{}]
    return sum(int(i.get("maxCount") or i.get("minCount") or 1) for i in items if isinstance(i, dict))


class UnusualInstances(Detector):
    id = "unusual-instances"
    title = "GPU or many instances launched"
    tactic = "impact"
    mitre = ("T1496",)
    stratus = ("aws.execution.ec2-launch-unusual-instances",)
    guardduty = ("Impact:IAMUser/AnomalousBehavior",)
    reads_params = frozenset(LAUNCHES)
    description = ("An instance launch with an accelerated type (p, g, inf, trn, dl, f, vt families) or at least "
                   "10 instances, by an identity that never launched instances. High.")
    routine = True
    behavioural = False

    cases = (
        c.positive("gpu-instances-for-mining",
                   "the task's credentials used from outside to launch ten p3.16xlarge instances for mining",
                   [c.ECS_THIEF.call(c.at(0), "ec2:RunInstances", c.launch("p3.16xlarge", 10))],
                   [c.ECS_HABIT], severity="high"),
        c.negative("ml-platform-launches-its-training-fleet",
                   "the ML platform's launcher starting its daily GPU training fleet, as it does every day",
                   [c.ML_LAUNCHER.call(c.at(0), "ec2:RunInstances", c.launch("g5.12xlarge", 12))],
                   [c.ML_HABIT], severity="low"),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or ev.api not in LAUNCHES or not ev.params:
            return
        accelerated = _ACCELERATED.findall(ev.params)
        count = _count(ev.params)
        if not accelerated and count < 10:
            return
        if any(profile.knows("api", api) for api in LAUNCHES):
            return
        what = f"{count} instance(s)" + (f" of type {', '.join(sorted(set(accelerated)))}" if accelerated else "")
        yield Hit("high", 0.8, f"{look.info.arn} launched {what} in {ev.region}"
                               + (" (failed: " + ev.error + ")" if ev.error else "") + f": {look.what()}. {look.normally()}",
                  {"instance_types": sorted(set(accelerated)), "count": count, "region": ev.region},
                  key=ev.region or "")
