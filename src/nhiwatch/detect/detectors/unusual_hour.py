"""Activity at an hour of the week the identity is never active."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect.detectors.base import HOUR_US, Detector, Hit, Look


class UnusualHour(Detector):
    id = "unusual-hour"
    title = "Activity at an unusual hour"
    tactic = "initial-access"
    mitre = ("T1078.004",)
    description = ("A call in an hour of the week (with its neighbours) that holds under 0.1% of a mature "
                   "identity's activity over at least 14 days. Low: schedules move; it adds context to others.")
    routine = True

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
