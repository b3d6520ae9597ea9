"""Logging or security monitoring switched off or narrowed."""

from __future__ import annotations

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


class DefenseEvasion(SensitiveFirstUse):
    id = "defense-evasion-first-use"
    title = "Logging or security monitoring switched off or narrowed"
    tactic = "defense-evasion"
    change_aware = False  # judged by what it does, a deploy does not explain it
    tactics = ("defense-evasion",)
    mitre = ('T1562.008', 'T1562.001')
    guardduty = ('Stealth:IAMUser/CloudTrailLoggingDisabled', 'DefenseEvasion:IAMUser/AnomalousBehavior', 'Stealth:IAMUser/PasswordPolicyChange', 'Stealth:S3/ServerAccessLoggingDisabled')
    description = ("The first call of a defense-evasion API (docs/detectors.md lists them) by an identity, or by its "
                   "peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code); low without "
                   "history or peers, except calls that blind defences.")
    cases = (
        c.positive("ci-key-stops-cloudtrail",
                   "the CI key used from outside stops the organisation's trail",
                   [c.CI_THIEF.call(c.at(0), "cloudtrail:StopLogging", {
                       "name": f"arn:aws:cloudtrail:us-east-1:{c.ACCOUNT}:trail/org-trail"})],
                   [c.CI_HABIT], severity="high"),
        c.negative("pipeline-sets-log-retention",
                   "the pipeline sets a log group's retention to 30 days, from its usual runners with its usual CLI",
                   [c.CI_USER.call(c.at(0), "logs:PutRetentionPolicy", {"logGroupName": "/aws/lambda/invoice-fn",
                                                                        "retentionInDays": 30})],
                   [c.CI_HABIT]),
    )
