"""Data-sharing and copy actions new to the identity."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Hit, Look
from nhiwatch.detect.detectors.resource_shared_externally import SHARING, grantees, outside_accounts
from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


def shared_inside(look: Look) -> bool:
    """A sharing call whose parameters grant only accounts of the organisation (or ones this identity
    already shares with), and not everyone."""
    ev = look.ev
    if ev.api not in SHARING:
        return False
    accounts, public = grantees(ev.api, ev.params)
    return bool(accounts) and not public and not outside_accounts(look, accounts)


class ExfiltrationFirstUse(SensitiveFirstUse):
    id = "exfiltration-first-use"
    title = "Data-sharing and copy actions new to the identity"
    tactic = "exfiltration"
    change_aware = False  # judged by what it does, a deploy does not explain it
    tactics = ("exfiltration",)
    mitre = ('T1537',)
    guardduty = ('Exfiltration:IAMUser/AnomalousBehavior', 'Policy:IAMUser/S3BlockPublicAccessDisabled')
    description = ("The first call of a exfiltration API (docs/detectors.md lists them) by an identity, or by its "
                   "peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code), or when a "
                   "share from there grants only the organisation's own accounts; low without history or peers, "
                   "except calls that blind defences.")
    cases = (
        c.positive("ci-key-replicates-a-bucket-out",
                   "the CI key used from outside sets up replication of the customer-data bucket to a bucket in the "
                   "attacker's account",
                   [c.CI_THIEF.call(c.at(0), "s3:PutBucketReplication", {
                       "bucketName": "customer-data", "replication": "",
                       "ReplicationConfiguration": {"Role": f"arn:aws:iam::{c.ACCOUNT}:role/replication", "Rule": {
                           "Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::exfil-bucket",
                                                                "Account": c.FOREIGN_ACCOUNT}}}})],
                   [c.CI_HABIT], severity="high"),
        c.negative("backup-job-starts-snapshotting-a-volume",
                   "the backup job starts snapshotting a new volume, from its usual server with its usual client",
                   [c.BACKUP_BOT.call(c.at(0), "ec2:CreateSnapshot", {"volumeId": "vol-0abc1234def567890",
                                                                      "description": "nightly"})],
                   [c.BACKUP_HABIT]),
        c.positive("stolen-backup-key-shares-with-an-organisation-account",
                   "the backup job's key used from outside shares a snapshot with another account of the "
                   "organisation (one the attacker also holds): the grantee is known, the hands are not",
                   [c.BACKUP_THIEF.call(c.at(0), "ec2:ModifySnapshotAttribute", c.snapshot_share(c.OTHER_ACCOUNT))],
                   [c.BACKUP_HABIT, c.OTHER_ACCOUNT_HABIT], severity="high"),
        c.negative("snapshot-shared-with-the-dr-account",
                   "the backup job shares a snapshot with the organisation's disaster-recovery account, from its usual "
                   "server with its usual client",
                   [c.BACKUP_BOT.call(c.at(0), "ec2:ModifySnapshotAttribute", c.snapshot_share(c.OTHER_ACCOUNT))],
                   [c.BACKUP_HABIT, c.OTHER_ACCOUNT_HABIT]),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        for hit in super().check(look):
            if look.usual_context and hit.severity in ("medium", "high") and shared_inside(look):
                hit.severity = "low"  # the runbook's copy to the DR or backup account, from where it always runs
                hit.explanation += " It granted only the organisation's own accounts."
            yield hit
