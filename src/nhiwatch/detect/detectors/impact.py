"""Destructive or costly actions new to the identity."""

from __future__ import annotations

from nhiwatch.detect import cases as c
from nhiwatch.detect.detectors.sensitive import SensitiveFirstUse


class Impact(SensitiveFirstUse):
    id = "impact-first-use"
    title = "Destructive or costly actions new to the identity"
    tactic = "impact"
    tactics = ("impact",)
    mitre = ('T1485', 'T1496')
    guardduty = ('Impact:IAMUser/AnomalousBehavior',)
    description = ("The first call of a impact API (docs/detectors.md lists them) by an identity, or by its "
                   "peer group while it is young. High for weight-3 APIs on a stable identity, medium for weight 2; "
                   "one level up from a new network with a new client, one down when the call failed; low from the "
                   "usual network and client (any weight for the workload's own runtime-marked code); low without "
                   "history or peers, except calls that blind defences.")
    cases = (
        c.positive("llmjacking-with-a-stolen-key",
                   "the CI key used from outside to invoke Bedrock models (LLMjacking)",
                   c.each(c.CI_USER.but(ip=c.ATTACKER, agent=c.BOTO3), [
                       c.Call("bedrock:InvokeModel", {"modelId": "anthropic.claude-3-sonnet-20240229-v1:0"})] * 3),
                   [c.CI_HABIT], severity="high"),
        c.negative("release-adds-bedrock-summaries",
                   "a release of the service starts summarising orders with Bedrock, from its usual network with its "
                   "usual SDK",
                   [c.ECS_TASK.call(c.at(0), "bedrock:InvokeModel",
                                    {"modelId": "anthropic.claude-3-haiku-20240307-v1:0"})],
                   [c.ECS_HABIT]),
    )
