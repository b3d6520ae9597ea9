"""Role chaining into another account: the identity assumes a role in an account it never reached."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import account_of


class RoleChainCrossAccount(Detector):
    id = "cross-account-role-chaining"
    title = "Role assumed in an account never reached before"
    tactic = "lateral-movement"
    mitre = ("T1550.001", "T1078.004")
    stratus = ("aws.lateral-movement.assume-role-cross-account",)
    guardduty = ("PrivilegeEscalation:IAMUser/AnomalousBehavior",)
    description = ("A successful AssumeRole into another account that the identity never reached. Medium; high "
                   "when the call also came from a new network or client; low when the workload's own code does it "
                   "from its usual place into one of the organisation's accounts.")

    routine = True

    cases = (
        c.positive("stolen-key-hops-into-the-prod-account",
                   "the CI key used from outside assumes the organisation's admin role in an account it never reached",
                   [c.assume_role(c.CI_THIEF, c.at(0),
                                  f"arn:aws:iam::{c.OTHER_ACCOUNT}:role/OrganizationAccountAccessRole", "x")],
                   [c.CI_HABIT, c.OTHER_ACCOUNT_HABIT], severity="high"),
        c.negative("service-reads-from-the-data-account",
                   "a release of the service reads a table in the organisation's data account: its own code assumes a "
                   "reader role there, from its usual network",
                   [c.assume_role(c.ECS_TASK, c.at(0), f"arn:aws:iam::{c.OTHER_ACCOUNT}:role/orders-reader",
                                  "orders-api")],
                   [c.ECS_HABIT, c.OTHER_ACCOUNT_HABIT]),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or ev.error or not ev.api.startswith("sts:AssumeRole") or not ev.assumed_role:
            return
        target = account_of(ev.assumed_role)
        if not target or target == ev.account or not look.is_new("target_account", target):
            return
        severity = "high" if look.new.get("net") or look.new.get("agent") else "medium"
        if severity == "medium" and target in look.known_accounts and look.actor in ("workload", "aws-agent"):
            severity = "low"  # its own code, from its usual place, into one of the organisation's accounts
        reached = ", ".join(a for a, _ in profile.top("target_account", 5)) or "no other account"
        yield Hit(severity, 0.7, f"{look.info.arn} assumed {ev.assumed_role} in account {target}, new to it (it "
                                 f"reached {reached} before): {look.what()}. {look.normally()}",
                  {"target_role": ev.assumed_role, "target_account": target}, key=target)
