"""Discovery in bulk: many different List/Describe/Get calls across services in a few minutes,
most of them new to the identity."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look

MIN_APIS = 12
MIN_SERVICES = 3


class Enumeration(Detector):
    id = "enumeration"
    title = "Bulk discovery across services"
    tactic = "discovery"
    mitre = ("T1087.004", "T1580", "T1526")
    stratus = ("aws.discovery.ec2-enumerate-from-instance",)
    guardduty = ("Discovery:IAMUser/AnomalousBehavior",)
    description = (f"In 15 minutes, at least {MIN_APIS} distinct read calls over at least {MIN_SERVICES} services, "
                   "of which at least half the identity never made before. Medium; high when it includes IAM or "
                   "organisation listing; low from the identity's usual network and client with nothing denied. "
                   "AWS service-linked roles and known vendors' roles sweep by design: low.")

    cases = (
        c.positive("stolen-key-maps-the-account",
                   "a fresh key holder's first minute: who am I, then users, roles, buckets, instances, functions, "
                   "databases, secrets, tables, keys and trails",
                   c.each(c.CI_THIEF, [
                       "sts:GetCallerIdentity", "iam:ListUsers", "iam:ListRoles", "iam:ListPolicies", "s3:ListBuckets",
                       "ec2:DescribeInstances", "ec2:DescribeSecurityGroups", "lambda:ListFunctions20150331",
                       "rds:DescribeDBInstances", "secretsmanager:ListSecrets", "dynamodb:ListTables", "kms:ListKeys",
                       "cloudtrail:DescribeTrails", "ec2:DescribeVpcs"]),
                   [c.CI_HABIT]),
        c.negative("cost-report-feature-lists-resources",
                   "a release of the service adds a cost report that lists resources across services, from its usual "
                   "network with its usual SDK, nothing denied",
                   c.each(c.ECS_TASK, ["ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots",
                                       "rds:DescribeDBInstances", "rds:DescribeDBSnapshots", "s3:ListBuckets",
                                       "lambda:ListFunctions20150331", "dynamodb:ListTables", "dynamodb:DescribeTable",
                                       "elasticloadbalancing:DescribeLoadBalancers", "ecs:ListClusters",
                                       "ecs:ListServices", "cloudwatch:GetMetricData"]),
                   [c.ECS_HABIT]),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or not look.new.get("api") or not ev.name.startswith(("List", "Describe", "Get")):
            return
        reads = {w[1] for w in profile.window if w[3]} | {ev.api}
        if len(reads) < MIN_APIS:
            return
        services = {api.split(":", 1)[0] for api in reads}
        novel = [api for api in reads if profile.count("api", api) <= 1]
        if len(services) < MIN_SERVICES or len(novel) * 2 < len(reads):
            return
        severity = "high" if any(a.startswith(("iam:", "organizations:")) for a in novel) else "medium"
        denied = sum(1 for w in profile.window if w[2])
        if look.usual_context and not denied:
            severity = "low"  # its usual client from its usual network, nothing denied: a new job, not a stranger
        yield Hit(severity, min(1.0, len(novel) / 30), f"{look.info.arn} made {len(reads)} different read calls "
                  f"over {len(services)} services in 15 minutes, {len(novel)} of them new: {', '.join(sorted(novel)[:8])}"
                  f"... {look.what()}. {look.normally()}",
                  {"distinct_reads": len(reads), "services": sorted(services), "new_apis": sorted(novel),
                   "denied_in_window": denied},
                  key="enumeration")
