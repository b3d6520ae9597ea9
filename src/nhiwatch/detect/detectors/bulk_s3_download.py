"""Objects downloaded in bulk from several buckets, far above the identity's habit."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look

MIN_OBJECTS = 100


class BulkS3Download(Detector):
    id = "bulk-s3-download"
    title = "Bulk download from S3"
    tactic = "exfiltration"
    mitre = ("T1530",)
    guardduty = ("Exfiltration:S3/AnomalousBehavior",)
    description = (f"At least {MIN_OBJECTS} GetObject calls in 15 minutes across at least 2 buckets, including a "
                   "bucket the identity never read. Medium; high from a new network; low on an identity still learning; "
                   "info within a day of a deploy of its workload from its usual network and client.")
    change_aware = True
    routine = True

    cases = (
        c.positive("backup-key-drains-three-buckets",
                   "the backup job's key used from outside to download objects from three buckets in ten minutes",
                   c.each(c.BACKUP_THIEF, [
                       c.Call("s3:GetObject", {"bucketName": bucket, "key": f"export/part-{n:04d}.csv"})
                       for n in range(40) for bucket in ("customer-data", "finance-reports", "backups")], step=4),
                   [c.BACKUP_HABIT], severity="high"),
        c.negative("nightly-etl-reads-its-usual-buckets",
                   "the ETL job's nightly run reads a hundred and twenty objects from the two buckets it reads every hour",
                   c.each(c.ETL_JOB, [c.Call("s3:GetObject", {"bucketName": bucket, "key": f"2026/03/05/{n:04d}.json"})
                                      for n in range(60) for bucket in ("raw-events", "reference-data")], step=4),
                   [c.ETL_HABIT]),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or ev.api != "s3:GetObject" or ev.error:
            return
        gets = [w for w in profile.window if w[1] == "s3:GetObject"]
        if len(gets) + 1 != MIN_OBJECTS:
            return  # once, when the window crosses the line
        buckets = {w[4] for w in gets if w[4]}
        new_buckets = [b for b in buckets if profile.count("resource", b) <= len([w for w in gets if w[4] == b])]
        if len(buckets) < 2 or not new_buckets:
            return
        severity = "low" if not profile.mature else "high" if look.new.get("net") else "medium"
        yield Hit(severity, 0.7, f"{look.info.arn} downloaded {len(gets) + 1} objects from {len(buckets)} buckets in "
                  f"15 minutes, {len(new_buckets)} of them new to it: {look.what()}. {look.normally()}",
                  {"objects": len(gets) + 1, "buckets": sorted(buckets)[:20], "new_buckets": sorted(new_buckets)[:20]},
                  key="s3-bulk")
