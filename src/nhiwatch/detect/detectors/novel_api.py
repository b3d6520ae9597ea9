"""An API the identity never called, of no particular sensitivity: context for the analyst."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
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

    cases = (
        c.positive("stolen-task-credentials-list-regions",
                   "the task's credentials used to list regions, an attacker's first look for unwatched ones",
                   [c.ECS_THIEF.call(c.at(0), "ec2:DescribeRegions")],
                   [c.ECS_HABIT], severity="low"),
        c.negative("function-release-adds-a-queue",
                   "the pipeline deploys new code of the function, which then sends to a queue for the first time, "
                   "from Lambda's fleet with its runtime",
                   [c.LAMBDA_FN.call(c.at(0), "sqs:SendMessage", {"queueUrl": c.queue("invoices")})],
                   [*c.LAMBDA_HISTORY, c.CI_USER.call(c.at(-1800), "lambda:UpdateFunctionCode20150331v2",
                                                      {"functionName": "invoice-fn", "publish": True})],
                   severity="low"),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or not look.new.get("api") or sensitive(ev.api) or not profile.mature:
            return
        if stable_weight(profile) < 0.5:
            return
        yield Hit("low", 0.2, f"{look.info.arn} called {ev.api} for the first time: {look.what()}. "
                              f"{look.normally()}", {"api": ev.api}, key=str(ev.t // HOUR_US))
