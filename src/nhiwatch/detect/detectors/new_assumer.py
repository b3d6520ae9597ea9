"""A role assumed by a principal or from an account that never assumed it before."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import account_of
from nhiwatch.knowledge.vendors import vendor_for_account


class NewAssumer(Detector):
    id = "new-assumer"
    title = "Role assumed by a principal it never saw"
    tactic = "lateral-movement"
    mitre = ("T1550.001",)
    description = ("A successful AssumeRole of this role by a caller that never assumed it. Medium when the caller "
                   "is in another account the role never trusted in practice and not a known vendor's (the vendor "
                   "table names 238 vendors' accounts); low within the account or for a known vendor.")

    cases = (
        c.positive("unknown-account-assumes-the-export-role",
                   "a principal of an account nobody knows assumes the export role (a trust policy open to the wrong "
                   "account, or a confused deputy)",
                   [c.assume_role(c.Caller(c.other_account(c.FOREIGN_ACCOUNT), c.ATTACKER, c.ATTACKER_CLI,
                                           recipient=c.ACCOUNT), c.at(0), c.EXPORT_ROLE, "export")],
                   c.EXPORT_HISTORY, identity=c.EXPORT_ROLE),
        c.negative("datadog-integration-assumes-the-role",
                   "the monitoring vendor's published account (Datadog) starts assuming the role after its integration "
                   "is installed",
                   [c.assume_role(c.Caller(c.other_account("464622532012", "AROAZDATADOGINTEGRATION:datadog"),
                                           "3.233.146.2", "aws-sdk-go/1.44.0 (go1.20; linux; amd64)",
                                           recipient=c.ACCOUNT), c.at(0), c.EXPORT_ROLE, "DatadogAWSIntegration")],
                   c.EXPORT_HISTORY, identity=c.EXPORT_ROLE),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if not ev.inbound or ev.error or ev.name != "AssumeRole" or not ev.caller or ev.caller_type == "service":
            return
        if not profile.mature or profile.seen["assumer"] < 5 or profile.knows("assumer", ev.caller):
            return
        caller_account = account_of(ev.caller) or ev.caller.split(":")[-1].split("/")[0]
        foreign = caller_account not in (look.info.account_id, None) and all(
            account_of(a) != caller_account for a in profile.facets["assumer"])
        vendor = vendor_for_account(caller_account) if foreign else None
        severity = "medium" if foreign and vendor is None else "low"
        yield Hit(severity, 0.6 if foreign else 0.3,
                  f"{look.info.arn} was assumed by {ev.caller}, which never assumed it before (its usual callers: "
                  f"{', '.join(a for a, _ in profile.top('assumer', 3))})"
                  + (f"; account {caller_account} is {vendor.name}'s, a known vendor." if vendor else "."),
                  {"caller": ev.caller, "caller_account": caller_account, "foreign": foreign,
                   "vendor": vendor.name if vendor else None}, key=ev.caller)
