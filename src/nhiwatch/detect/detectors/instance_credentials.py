"""EC2 instance-role credentials used from a second place: the instance's session (named after the
instance, i-...) keeps calling from its own network while the same session appears elsewhere."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect.detectors.base import Detector, Hit, Look


class InstanceCredentialsElsewhere(Detector):
    id = "instance-credentials-off-instance"
    title = "Instance credentials used away from their instance"
    tactic = "credential-access"
    mitre = ("T1552.005", "T1078.004")
    stratus = ("aws.credential-access.ec2-steal-instance-credentials",)
    guardduty = ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
                 "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS")
    description = ("A role session named after an EC2 instance (i-...) used from a network that neither this "
                   "session nor the role has used, while the session has a network of its own. High.")

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        session = ev.session or ""
        if ev.inbound or not session.startswith("i-") or look.net.startswith(("service:", "aws-internal", "vpce:")):
            return
        known = profile.sessions.get(session)
        if not known or look.net in known or not look.new.get("net"):
            return
        yield Hit("high", 0.9, f"the session {session} of {look.info.arn} was used from {look.net}, while the "
                               f"instance calls from {', '.join(known)}: {look.what()}. Normally {look.baseline()}.",
                  {"session": session, "instance_networks": known, "network": look.net, "agent": look.agent},
                  key=session)
