"""Sign-in paths new to the identity: console logins and sign-in tokens for workload credentials."""

from __future__ import annotations

from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


class InitialAccess(SensitiveFirstUse):
    id = "initial-access-first-use"
    title = "Console sign-in or sign-in token new to the identity"
    tactic = "initial-access"
    tactics = ("initial-access",)
    mitre = ("T1078.004",)
    stratus = ("aws.initial-access.console-login-without-mfa",)
    guardduty = ("InitialAccess:IAMUser/AnomalousBehavior",)
    description = ("The first console login or sign-in token of an identity that never signed in that way. "
                   "Medium on a stable identity; one level up from a new network with a new client.")
