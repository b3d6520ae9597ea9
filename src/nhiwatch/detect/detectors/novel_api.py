"""An API the identity never called, of no particular sensitivity: context for the analyst."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect.catalog import sensitive
from nhiwatch.detect.detectors.base import HOUR_US, Detector, Hit, Look, stable_weight


class NovelApi(Detector):
    id = "novel-api"
    title = "First call of an API"
    tactic = "discovery"
    mitre = ("T1526",)
    change_aware = True
    description = ("A call a stable, mature identity never made, outside the sensitive catalogue (the tactic "
                   "detectors take those). Low; one finding per identity and hour.")

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or not look.new.get("api") or sensitive(ev.api) or not profile.mature:
            return
        if stable_weight(profile) < 0.5:
            return
        yield Hit("low", 0.2, f"{look.info.arn} called {ev.api} for the first time: {look.what()}. "
                              f"{look.normally()}", {"api": ev.api}, key=str(ev.t // HOUR_US))
