"""Sign-in paths new to the identity: console logins and sign-in tokens for workload credentials."""

from __future__ import annotations

from nhiwatch.detect import cases as c
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
    cases = (
        c.positive("service-user-signs-in-to-the-console",
                   "the CI user, which only ever used its key, signs in to the console with a browser from outside "
                   "(a password set by whoever holds the key)",
                   [c.Caller(c.iam_user("ci-deploy", key=""), c.ATTACKER, c.BROWSER).call(
                       c.at(0), "signin:ConsoleLogin", None, response={"ConsoleLogin": "Success"})],
                   [c.CI_HABIT]),
        c.positive("stolen-key-turns-into-a-console-session",
                   "the CI key turned into a console sign-in token through a federation token (aws_consoler)",
                   [c.CI_USER.but(ip=c.ATTACKER, agent="python-requests/2.31.0").call(
                       c.at(0), "sts:GetFederationToken", {"name": "consoler", "policy": c.admin_policy()}),
                    c.Caller(c.federated_user("ci-deploy", "consoler"), c.ATTACKER, "python-requests/2.31.0").call(
                        c.at(5), "signin:GetSigninToken", None, response={"GetSigninToken": "Success"})],
                   [c.CI_HABIT], identity=f"arn:aws:iam::{c.ACCOUNT}:user/ci-deploy"),
        c.negative("engineer-signs-in-through-sso",
                   "an engineer signing in to the console through IAM Identity Center",
                   [c.SSO_PERSON.but(agent=c.BROWSER).call(c.at(0), "signin:ConsoleLogin", None,
                                                             response={"ConsoleLogin": "Success"})],
                   [c.SSO_HABIT]),
    )
