"""Snapshots, images, database snapshots, buckets or security groups opened to another account or to
the world: the request parameters say who was given access."""

from __future__ import annotations

import json
import re
from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look

_ACCOUNT = re.compile(r"\b(\d{12})\b")
# Any CIDR with prefix length 0 is every address: EC2 takes 208.236.235.254/0 as 0.0.0.0/0.
_ANY_ADDRESS = re.compile(r'"[0-9A-Fa-f:.]*/0"')
SHARING = {
    "ec2:ModifySnapshotAttribute": ("EBS snapshot", ("aws.exfiltration.ec2-share-ebs-snapshot",)),
    "ec2:ModifyImageAttribute": ("AMI", ("aws.exfiltration.ec2-share-ami",)),
    "rds:ModifyDBSnapshotAttribute": ("RDS snapshot", ("aws.exfiltration.rds-share-snapshot",)),
    "rds:ModifyDBClusterSnapshotAttribute": ("RDS cluster snapshot", ("aws.exfiltration.rds-share-snapshot",)),
    "s3:PutBucketPolicy": ("S3 bucket policy", ("aws.exfiltration.s3-backdoor-bucket-policy",)),
    "s3:PutBucketAcl": ("S3 bucket ACL", ()),
    "iam:UpdateAssumeRolePolicy": ("role trust policy", ("aws.persistence.iam-backdoor-role",)),
    "ec2:AuthorizeSecurityGroupIngress": ("security group", ("aws.exfiltration.ec2-security-group-open-port-22-ingress",)),
    "lambda:AddPermission20150331v2": ("Lambda function policy", ("aws.persistence.lambda-backdoor-function",)),
    "lambda:AddPermission": ("Lambda function policy", ("aws.persistence.lambda-backdoor-function",)),
}


def grantees(api: str, params: str | None) -> tuple[set[str], bool]:
    """(accounts given access, whether the world was) from a sharing call's parameters."""
    if not params:
        return set(), False
    text = params
    if api == "ec2:AuthorizeSecurityGroupIngress":
        return set(), bool(_ANY_ADDRESS.search(text))
    try:
        data = json.loads(params)
    except ValueError:
        data = {}
    if api in ("ec2:ModifySnapshotAttribute", "ec2:ModifyImageAttribute"):
        adds = json.dumps({k: v for k, v in data.items() if "Permission" in k or "launch" in k.lower()})
        if '"remove"' in adds and '"add"' not in adds:
            return set(), False
        return set(_ACCOUNT.findall(adds)), '"all"' in adds
    if api.startswith("rds:"):
        values = json.dumps(data.get("valuesToAdd") or [])
        return set(_ACCOUNT.findall(values)), '"all"' in values
    public = bool(re.search(r'"(AWS"\s*:\s*)?"\*"', text)) or "AllUsers" in text or "AuthenticatedUsers" in text
    return set(_ACCOUNT.findall(text)), public


def outside_accounts(look: Look, accounts: set[str]) -> list[str]:
    """The granted accounts that are neither the caller's, nor the organisation's as far as nhiwatch
    knows, nor ones this identity already works with."""
    known = look.profile.facets["target_account"]
    return sorted(a for a in accounts if a != look.ev.account and a not in known and a not in look.known_accounts)


class ResourceSharedExternally(Detector):
    id = "resource-shared-externally"
    title = "Resource shared with another account or made public"
    tactic = "exfiltration"
    mitre = ("T1537", "T1098")
    reads_params = frozenset(SHARING)
    stratus = tuple(sorted({s for _, ss in SHARING.values() for s in ss}))
    guardduty = ("Exfiltration:IAMUser/AnomalousBehavior", "Policy:S3/BucketAnonymousAccessGranted")
    description = ("A sharing call (snapshot, AMI, DB snapshot attribute, bucket policy or ACL, trust policy, "
                   "function policy, security-group ingress) whose parameters grant an account outside the ones "
                   "this installation has seen, or everyone. High; critical when public from a new network.")
    routine = True
    behavioural = False

    cases = (
        c.positive("snapshot-shared-with-an-outside-account",
                   "the backup job's key used to share a database volume's snapshot with an account outside the "
                   "organisation",
                   [c.BACKUP_THIEF.call(c.at(0), "ec2:ModifySnapshotAttribute", c.snapshot_share(c.FOREIGN_ACCOUNT))],
                   [c.BACKUP_HABIT], severity="high"),
        c.positive("ssh-opened-to-the-world",
                   "the task's credentials used from outside to open SSH on a security group to every address, with "
                   "the CIDR written as Stratus Red Team writes it (an address with /0, which EC2 takes as 0.0.0.0/0)",
                   [c.ECS_THIEF.call(c.at(0), "ec2:AuthorizeSecurityGroupIngress", {
                       "groupId": "sg-003dc7f1f1c686164", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                       "cidrIp": "208.236.235.254/0", "ipPermissions": {}})],
                   [c.ECS_HABIT], severity="high"),
        c.negative("snapshot-shared-with-the-dr-account",
                   "the backup job shares a snapshot with the organisation's disaster-recovery account, as its runbook "
                   "says",
                   [c.BACKUP_BOT.call(c.at(0), "ec2:ModifySnapshotAttribute", c.snapshot_share(c.OTHER_ACCOUNT))],
                   [c.BACKUP_HABIT, c.OTHER_ACCOUNT_HABIT], severity="low"),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev = look.ev
        if ev.inbound or ev.api not in SHARING or ev.error:
            return
        what, stratus = SHARING[ev.api]
        accounts, public = grantees(ev.api, ev.params)
        outside = outside_accounts(look, accounts)
        if not outside and not public:
            return
        severity = "critical" if public and look.new.get("net") else "high"
        target = "everyone" if public else "account " + ", ".join(outside)
        yield Hit(severity, 0.9, f"{look.info.arn} opened a {what} to {target}: {look.what()}. "
                                 f"{look.normally()}",
                  {"api": ev.api, "granted_accounts": outside, "public": public}, key=ev.api, stratus=stratus)
