"""A burst of calls far above the identity's own hourly rate."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import Detector, Hit, Look


class VolumeBurst(Detector):
    id = "volume-burst"
    title = "Call volume far above the identity's own rate"
    tactic = "impact"
    mitre = ("T1496", "T1530")
    description = ("Calls in the current hour pass mean + 6 standard deviations and 5 times the mean of the "
                   "identity's active hours, and at least 200. Low; medium when the hour also brought a new network.")
    routine = True

    cases = (
        c.positive("scraping-through-rotating-proxies",
                   "the backup job's key used through a rotating residential proxy pool, each call from a new address, "
                   "with the job's own SDK, listing the bucket hundreds of times in minutes",
                   c.later(lambda: [c.BACKUP_BOT.but(ip=f"92.40.{n % 250}.{17 + n // 250}").call(
                       c.at(n * 3), "s3:ListObjectsV2", {"bucketName": "backups", "prefix": f"db/{n}"})
                       for n in range(260)]),
                   [c.BACKUP_HABIT]),
        c.negative("nightly-batch-at-its-usual-size",
                   "the nightly batch making its usual four hundred calls at 02:00",
                   c.each(c.BATCH, [c.BATCH_WRITE] * 400,
                          start=c.NOW - c.timedelta(hours=8), step=9),
                   c.BATCH_HISTORY),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or profile.hour_key != ev.t // 3_600_000_000 or profile.hour_count < 199:
            return
        if not profile.mature or profile.hour_stats[0] < 24:
            return
        current = profile.hour_count + 1
        mean, deviation = profile.hourly_rate()
        limit = max(200, mean * 5, mean + 6 * deviation)
        if current != int(limit) + 1:
            return  # once, when the hour crosses the line
        severity = "medium" if look.new.get("net") else "low"
        yield Hit(severity, 0.5, f"{look.info.arn} made {current} calls this hour; its active hours average "
                                 f"{mean:.0f} (sd {deviation:.0f}). {look.what()}. {look.normally()}",
                  {"calls_this_hour": current, "hourly_mean": round(mean, 1), "hourly_sd": round(deviation, 1)},
                  key="burst")
