"""Activity at an hour of the week the identity is never active."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.base import HOUR_US, Detector, Hit, Look


class UnusualHour(Detector):
    id = "unusual-hour"
    title = "Activity at an unusual hour"
    tactic = "initial-access"
    mitre = ("T1078.004",)
    description = ("A call in an hour of the week (with its neighbours) that holds under 0.1% of a mature "
                   "identity's activity over at least 14 days. Low: schedules move; it adds context to others.")
    routine = True

    cases = (
        c.positive("office-hours-job-called-at-3am-on-sunday",
                   "the reporting key, used only on weekdays in office hours, called at 03:00 on a Sunday",
                   [c.BI_USER.call(c.T0 + c.timedelta(days=6, hours=3), "athena:StartQueryExecution",
                                   {"queryString": "SELECT * FROM customers"})],
                   [c.BI_HABIT], severity="low"),
        c.negative("job-runs-an-hour-late",
                   "the reporting job running an hour later than usual (18:00), next to its usual hours",
                   [c.BI_USER.call(c.T0 + c.timedelta(days=3, hours=18, minutes=5), "athena:StartQueryExecution",
                                   {"queryString": "SELECT count(*) FROM orders"})],
                   [c.BI_HABIT], severity="low"),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or profile.hour_key == ev.t // HOUR_US or not profile.mature or profile.span_days < 14:
            return  # judged once per hour: at its first call
        hour_of_week = (ev.t // HOUR_US + 72) % 168
        if profile.hour_share(hour_of_week) >= 0.001:
            return
        yield Hit("low", 0.3, f"{look.info.arn} is active at {look.when()}, when it almost never is. "
                              f"{look.what()}. {look.normally()}",
                  {"hour_of_week": hour_of_week}, key=str(ev.t // HOUR_US))
