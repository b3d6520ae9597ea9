"""Secrets or parameters read in bulk: many different ones in minutes, where the identity normally
reads the same few."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.profile import WINDOW_SECONDS

SECRET_READS = {"secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue", "ssm:GetParameter",
                "ssm:GetParameters", "ssm:GetParametersByPath", "ec2:GetPasswordData"}
MIN_DISTINCT = 5


class BulkSecretAccess(Detector):
    id = "bulk-secret-access"
    title = "Secrets or parameters read in bulk"
    tactic = "credential-access"
    mitre = ("T1555.006", "T1552")
    stratus = ("aws.credential-access.secretsmanager-retrieve-secrets",
               "aws.credential-access.secretsmanager-batch-retrieve-secrets",
               "aws.credential-access.ssm-retrieve-securestring-parameters")
    guardduty = ("CredentialAccess:IAMUser/AnomalousBehavior",)
    description = (f"At least {MIN_DISTINCT} different secrets or parameters (or a BatchGetSecretValue) in 15 "
                   "minutes, more than twice as many as the identity ever read before. High from a new network or client, medium "
                   "from the usual ones, low on an identity still learning (its first start-up reads its whole "
                   "configuration).")
    routine = True

    cases = (
        c.positive("twenty-secrets-in-forty-seconds-from-a-stranger",
                   "the task's credentials used from a Tor exit with boto3 to read every secret the role can reach",
                   c.each(c.ECS_TASK.but(ip=c.TOR_EXIT, agent=c.BOTO3), [
                       c.Call("secretsmanager:GetSecretValue", {"secretId": c.secret(f"team/s{n}-XyZ123")})
                       for n in range(20)]),
                   [c.ECS_HABIT], severity="high"),
        c.positive("parameters-read-one-by-one",
                   "the task's credentials used from outside to read twenty SecureString parameters, one GetParameter "
                   "each",
                   c.each(c.ECS_TASK.but(ip=c.TOR_EXIT, agent=c.BOTO3), [
                       c.Call("ssm:GetParameter", {"name": f"/prod/app{n}/db_password", "withDecryption": True})
                       for n in range(20)]),
                   [c.ECS_HABIT]),
        c.negative("new-service-reads-its-secrets-at-first-start",
                   "a new service's first start-up reads its eight secrets, before it has any history",
                   c.each(c.Caller(c.role_session("payments-api", "0d9e8f7a6b5c", path="/service/"), c.NAT_US_EAST_1,
                                   c.GO_ECS), [
                       c.Call("secretsmanager:GetSecretValue", {"secretId": c.secret(f"payments/{name}-Ab12Cd")})
                       for name in ("db", "stripe", "sendgrid", "sentry", "jwt", "redis", "queue", "webhook")], step=1)),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or ev.api not in SECRET_READS or ev.error:
            return
        recent = {w[4] for w in profile.window if w[1] in SECRET_READS and w[4]}
        if ev.resource:
            recent.add(ev.resource)
        since = ev.t - WINDOW_SECONDS * 1_000_000
        # secrets and parameters it knew before this window (names of parameters are not ARNs)
        known = sum(1 for r, (_, first) in profile.facets["resource"].items()
                    if first < since and (r.startswith(("arn:aws:secretsmanager", "arn:aws:ssm")) or r.startswith("/")))
        batch = ev.api == "secretsmanager:BatchGetSecretValue" and not profile.knows("api", ev.api)
        if not batch and (len(recent) < MIN_DISTINCT or len(recent) <= 2 * known):
            return
        # A young identity's first start-up reads its whole configuration; someone else's hands show in
        # a new network or client.
        severity = "low" if not profile.mature else "medium" if look.usual_context else "high"
        yield Hit(severity, min(1.0, len(recent) / 10), f"{look.info.arn} read {len(recent)} different secrets or "
                  f"parameters in 15 minutes (it had read {known} before): {look.what()}. {look.normally()}",
                  {"distinct_recent": len(recent), "known_before": known, "batch": batch}, key="secrets")
