"""Many resources deleted in minutes by an identity that rarely deletes."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look

MIN_DELETES = 10


class MassDeletion(Detector):
    id = "mass-deletion"
    title = "Mass deletion"
    tactic = "impact"
    mitre = ("T1485",)
    stratus = ("aws.impact.s3-ransomware-batch-deletion", "aws.impact.s3-ransomware-individual-deletion")
    description = (f"At least {MIN_DELETES} Delete/Terminate calls in 15 minutes from an identity whose deletes "
                   "so far are under 1% of its calls. High from a new network or client, medium from the usual ones "
                   "(a teardown), low on an identity still learning (a cleanup job's first run).")
    routine = True

    cases = (
        c.positive("ransomware-deletes-backups-one-by-one",
                   "the backup job's key used from outside to delete the backups object by object (after copying them)",
                   c.each(c.BACKUP_THIEF, [
                       c.Call("s3:DeleteObject", {"bucketName": "backups", "key": f"db/dump-{n:03d}.sql.gz"})
                       for n in range(20)]),
                   [c.BACKUP_HABIT], severity="high"),
        c.negative("retention-job-prunes-old-backups",
                   "the retention job deleting expired backups, as it does every hour",
                   c.each(c.PRUNER, [c.Call("s3:DeleteObject", {"bucketName": "backups", "key": f"db/{n:03d}.sql.gz"})
                                     for n in range(30)]),
                   [c.PRUNER_HABIT]),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or not ev.name.startswith(("Delete", "Terminate")) or ev.error:
            return
        deletes = [w for w in profile.window if w[1].split(":", 1)[1].startswith(("Delete", "Terminate"))]
        if len(deletes) + 1 != MIN_DELETES:
            return
        history = sum(e[0] for api, e in profile.facets["api"].items()
                      if api.split(":", 1)[1].startswith(("Delete", "Terminate")))
        if history > 0.01 * max(profile.n, 1):
            return
        severity = "low" if not profile.mature else "medium" if look.usual_context else "high"
        yield Hit(severity, 0.8, f"{look.info.arn} deleted {len(deletes) + 1} resources in 15 minutes "
                               f"({', '.join(sorted({w[1] for w in deletes})[:5])}): {look.what()}. {look.normally()}",
                  {"deletes": len(deletes) + 1}, key="deletion")
