"""Probing the edges of a permission set: a run of AccessDenied / UnauthorizedOperation errors on
several different calls, from an identity that rarely hits one."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look, plural
from nhiwatch.detect.features import DENIED


class AccessDeniedProbing(Detector):
    id = "access-denied-probing"
    hostile = True
    title = "Permission probing: repeated access denied"
    tactic = "discovery"
    mitre = ("T1580", "T1069.003")
    stratus = ("aws.credential-access.ec2-get-password-data", "aws.discovery.ec2-download-user-data")
    guardduty = ("Discovery:IAMUser/AnomalousBehavior",)
    description = ("At least 5 denied calls in 15 minutes on at least 3 different APIs or on at least 5 different "
                   "resources (guessed instance ids, role names, secrets), from an identity whose denied share so far "
                   "is under 1%. Medium. A retry loop on one call is not probing.")

    cases = (
        c.positive("stolen-key-probes-its-permissions",
                   "a key holder trying what the key may do: password data, user data, users, secrets, parameters, "
                   "functions, each denied",
                   c.each(c.CI_THIEF, [
                       c.Call("ec2:GetPasswordData", {"instanceId": c.OTHER_INSTANCE},
                              error="Client.UnauthorizedOperation"),
                       c.Call("ec2:DescribeInstanceAttribute", {"instanceId": c.OTHER_INSTANCE,
                                                                "attribute": "userData"},
                              error="Client.UnauthorizedOperation"),
                       c.Call("iam:ListUsers", error="AccessDenied"),
                       c.Call("secretsmanager:ListSecrets", error="AccessDeniedException"),
                       c.Call("ssm:DescribeParameters", error="AccessDeniedException"),
                       c.Call("lambda:ListFunctions20150331", error="AccessDenied")]),
                   [c.CI_HABIT]),
        c.positive("instance-ids-brute-forced-for-passwords-and-user-data",
                   "Stratus Red Team's probes: GetPasswordData on thirty guessed instance ids and "
                   "DescribeInstanceAttribute (userData) on fifteen, every one denied",
                   c.each(c.CI_THIEF, [c.Call("ec2:GetPasswordData", {"instanceId": f"i-0{n:016x}"},
                                              error="Client.UnauthorizedOperation") for n in range(30)]
                          + [c.Call("ec2:DescribeInstanceAttribute", {"instanceId": f"i-1{n:016x}",
                                                                      "attribute": "userData"},
                                    error="Client.UnauthorizedOperation") for n in range(15)], step=1),
                   [c.CI_HABIT]),
        c.negative("retry-loop-on-a-missing-permission",
                   "a release that needs a permission the role lacks: the SDK retries the same denied call",
                   c.each(c.ECS_TASK, [c.Call("sqs:DeleteMessage", {"queueUrl": c.queue("orders")},
                                              error="AccessDenied")] * 8, step=20),
                   [c.ECS_HABIT]),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or ev.error not in DENIED:
            return
        denied = [w for w in profile.window if w[2]]
        apis = {w[1] for w in denied} | {ev.api}
        targets = {(w[1], w[4]) for w in denied if w[4]} | ({(ev.api, ev.resource)} if ev.resource else set())
        if len(denied) + 1 < 5 or (len(apis) < 3 and len(targets) < 5) or not profile.mature \
                or profile.denied > 0.01 * profile.n:
            return
        yield Hit("medium", min(1.0, len(apis) / 8), f"{look.info.arn} was denied {len(denied) + 1} times on "
                  f"{plural(len(apis), 'API')} and {plural(len(targets), 'resource')} in 15 minutes "
                  f"({', '.join(sorted(apis)[:6])}): {look.what()}. Before, "
                  f"{profile.denied} of its {profile.n:,} calls were denied.",
                  {"denied_calls": len(denied) + 1, "apis": sorted(apis), "resources": len(targets),
                   "history_denied": profile.denied},
                  key="denied")
