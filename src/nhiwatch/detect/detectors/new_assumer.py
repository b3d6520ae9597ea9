"""A role assumed by a principal or from an account that never assumed it before."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import account_of


class NewAssumer(Detector):
    id = "new-assumer"
    title = "Role assumed by a principal it never saw"
    tactic = "lateral-movement"
    mitre = ("T1550.001",)
    description = ("A successful AssumeRole of this role by a caller that never assumed it. Medium when the caller "
                   "is in another account the role never trusted in practice; low within the account.")

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if not ev.inbound or ev.error or ev.name != "AssumeRole" or not ev.caller or ev.caller_type == "service":
            return
        if not profile.mature or profile.seen["assumer"] < 5 or profile.knows("assumer", ev.caller):
            return
        caller_account = account_of(ev.caller) or ev.caller.split(":")[-1].split("/")[0]
        foreign = caller_account not in (look.info.account_id, None) and all(
            account_of(a) != caller_account for a in profile.facets["assumer"])
        severity = "medium" if foreign else "low"
        yield Hit(severity, 0.6 if foreign else 0.3,
                  f"{look.info.arn} was assumed by {ev.caller}, which never assumed it before (its usual callers: "
                  f"{', '.join(a for a, _ in profile.top('assumer', 3))}).",
                  {"caller": ev.caller, "caller_account": caller_account, "foreign": foreign}, key=ev.caller)
