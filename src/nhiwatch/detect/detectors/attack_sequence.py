"""An attack walked as a sequence: one identity moving through several tactics within an hour —
denied probing or discovery, then escalation, persistence, credential access or exfiltration — with
at least one sign that someone else holds the credentials (denied probing, an attack tool, an
unfamiliar place, credentials outside their runtime, a dangerous IAM write). Each step alone may be
low on an identity with no history; together they are one finding naming each step, from a cold
start too. (GuardDuty's attack sequences, AttackSequence:IAM/CompromisedCredentials, are the model.)"""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.catalog import TACTIC_ORDER
from nhiwatch.detect.detectors.base import Detector, Hit, Look

IMPACTFUL = frozenset({"privilege-escalation", "persistence", "credential-access", "exfiltration",
                       "defense-evasion", "impact", "lateral-movement"})
MIN_TACTICS = 3


class AttackSequence(Detector):
    id = "attack-sequence"
    summarises_steps = True
    title = "Attack sequence: several tactics in an hour"
    tactic = "privilege-escalation"
    mitre = ("T1078.004",)
    guardduty = ("AttackSequence:IAM/CompromisedCredentials",)
    description = (f"Within an hour, one identity's findings (any severity, or a burst of denied calls) span at least "
                   f"{MIN_TACTICS} tactics, at least one of them escalation, persistence, credential access, "
                   "exfiltration, defence evasion, lateral movement or impact, and at least one step says someone "
                   "else holds the credentials (denied probing, attack tool, unfamiliar place, credentials outside "
                   "their runtime, dangerous IAM write). High; critical from 4 tactics. Needs no history.")
    behavioural = False
    routine = True

    cases = (
        c.positive("stolen-key-probes-escalates-and-persists",
                   "a stolen static key with no history: denied probes, an admin policy on itself, a spare access key",
                   c.each(c.Caller(c.iam_user("svc-backup", key="AKIAEXAMPLESVCBKUP01"), c.TOR_EXIT, c.BOTO3), [
                       "sts:GetCallerIdentity",
                       c.Call("ec2:DescribeInstances", error="Client.UnauthorizedOperation"),
                       c.Call("s3:ListBuckets", error="AccessDenied"),
                       c.Call("lambda:ListFunctions20150331", error="AccessDenied"),
                       c.Call("secretsmanager:ListSecrets", error="AccessDeniedException"),
                       c.Call("iam:PutUserPolicy", {"userName": "svc-backup", "policyName": "maintenance",
                                                    "policyDocument": c.admin_policy()}),
                       c.Call("iam:CreateAccessKey", {"userName": "svc-backup"},
                              response={"accessKey": {"accessKeyId": "AKIAEXAMPLESPAREKEY1", "status": "Active",
                                                      "userName": "svc-backup"}})], step=20),
                   severity="high"),
        c.negative("terraform-creates-a-new-services-role",
                   "a Terraform apply from the usual runners creating a new service's role, its scoped policy, a "
                   "parameter and a log group",
                   c.each(c.CI_USER.but(agent=c.TERRAFORM), [
                       "iam:ListRoles",
                       c.Call("iam:CreateRole", {"roleName": "payments-api", "assumeRolePolicyDocument":
                           '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":'
                           '"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}'}),
                       c.Call("iam:PutRolePolicy", {"roleName": "payments-api", "policyName": "queue",
                                                    "policyDocument": c.scoped_policy("sqs:SendMessage")}),
                       c.Call("ssm:PutParameter", {"name": "/payments/log_level", "type": "String"}),
                       c.Call("logs:CreateLogGroup", {"logGroupName": "/ecs/payments-api"})], step=5),
                   [c.habit(c.CI_USER.but(agent=c.TERRAFORM), "s3:PutObject", "ecs:DescribeServices")], severity="low"),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        steps = [s for s in look.profile.steps if s[0] >= look.ev.t - 3_600_000_000]
        if not steps or steps[-1][0] != look.ev.t:
            return  # only when this event added a step
        tactics = {s[1] for s in steps}
        if len(tactics) < MIN_TACTICS or not tactics & IMPACTFUL or not any(s[3] for s in steps):
            return
        ordered = sorted(tactics, key=lambda t: TACTIC_ORDER.index(t) if t in TACTIC_ORDER else len(TACTIC_ORDER))
        walked = "; ".join(f"{t}: {', '.join(sorted({s[2] for s in steps if s[1] == t}))}" for t in ordered)
        severity = "critical" if len(tactics) >= 4 else "high"
        yield Hit(severity, min(1.0, 0.25 * len(tactics)),
                  f"{look.info.arn} went through {len(tactics)} tactics within an hour ({walked}), with signs that "
                  f"someone else holds its credentials: {look.what()}. {look.normally()}",
                  {"tactics": ordered, "steps": [{"tactic": s[1], "detector": s[2], "hostile": s[3]} for s in steps],
                   "hostile": True}, key="sequence")
