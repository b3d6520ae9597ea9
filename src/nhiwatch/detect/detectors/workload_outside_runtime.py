"""A workload role's credentials used outside its runtime: every call it ever made carried the
runtime's mark (the SDK's exec-env/AWS_Lambda, AWS_ECS_...), and now one comes without it from a
new network. Credentials copied out of a function or a task look exactly like this."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import runtime_of


class WorkloadOutsideRuntime(Detector):
    id = "workload-credentials-outside-runtime"
    title = "Workload credentials used outside their runtime"
    tactic = "credential-access"
    mitre = ("T1552.005", "T1078.004")
    stratus = ("aws.credential-access.ec2-steal-instance-credentials",)
    guardduty = ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",)
    description = ("At least 95% of a mature identity's calls came from one AWS runtime (Lambda, ECS, ...), "
                   "and a call without any runtime mark arrives from a network never seen. High.")

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or not profile.mature or runtime_of(look.agent) or not look.new.get("net"):
            return
        if look.net.startswith(("service:", "aws-internal", "vpce:")):
            return
        marked = sum(entry[0] for family, entry in profile.facets["agent"].items() if runtime_of(family))
        total = profile.seen["agent"] or 1
        if marked / total < 0.95:
            return
        runtimes = sorted({runtime_of(f) for f in profile.facets["agent"] if runtime_of(f)})
        yield Hit("high", 0.9, f"{look.info.arn} always ran inside {', '.join(runtimes)} ({marked:,} of {total:,} "
                               f"calls), but {look.what()}. Normally {look.baseline()}.",
                  {"runtimes": runtimes, "runtime_share": round(marked / total, 3), "network": look.net,
                   "agent": look.agent}, key=look.net)
