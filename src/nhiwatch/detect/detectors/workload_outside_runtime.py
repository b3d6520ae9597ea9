"""A workload role's credentials used outside its runtime. The role's code runs in an AWS compute
service (its trust policy names Lambda, ECS tasks, CodeBuild ...; without an inventory: every call so
far carried the SDK's runtime mark, exec-env/AWS_Lambda ...), and now a client without that mark uses
it. AWS services acting with the role (the Lambda worker writing logs, the runtime decrypting the
environment, CloudFormation) are not the role's code and never count. Credentials copied out of a
function or a task look exactly like this."""

from __future__ import annotations

from typing import Iterable

from nhiwatch.detect import cases as c
from nhiwatch.detect.actor import Actor
from nhiwatch.detect.detectors.base import Detector, Hit, Look
from nhiwatch.detect.features import network_class, runtime_of

MIN_CALLS = 20           # without an inventory, the runtime share is judged on at least this many calls
MIN_RUNTIME_SHARE = 0.95


class WorkloadOutsideRuntime(Detector):
    id = "workload-credentials-outside-runtime"
    hostile = True
    title = "Workload credentials used outside their runtime"
    tactic = "credential-access"
    mitre = ("T1552.005", "T1078.004")
    stratus = ("aws.credential-access.ec2-steal-instance-credentials",)
    guardduty = ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",)
    description = ("A role whose code runs in Lambda, ECS, CodeBuild ... (its trust policy, or the service seen "
                   f"assuming it; failing both, at least {MIN_RUNTIME_SHARE:.0%} of {MIN_CALLS}+ calls carried the runtime's mark) is used by a "
                   "client without the mark that is not an AWS service or agent. From a network outside AWS: high "
                   "from the first call, no history needed. From inside AWS with a client the mature role never "
                   "used: medium.")
    cases = (
        c.positive("lambda-keys-from-the-internet",
                   "the function's credentials, read from its environment (an SSRF or a leaked debug dump), are used "
                   "with the CLI from a laptop outside AWS",
                   c.each(c.LAMBDA_FN.but(ip=c.ATTACKER, agent=c.ATTACKER_CLI),
                          ["sts:GetCallerIdentity", "s3:ListBuckets",
                           c.Call("dynamodb:Scan", {"tableName": "invoices"})]),
                   c.LAMBDA_HISTORY, severity="high"),
        c.negative("lambda-service-writes-logs-and-decrypts",
                   "the Lambda service writing the function's logs from a fleet host it never used, and the runtime "
                   "decrypting the function's environment at a cold start: AWS acting with the role, not its code",
                   [c.LAMBDA_WORKER.but(ip=c.LAMBDA_FLEET_B).call(c.at(0), "logs:CreateLogStream",
                                                                    {"logGroupName": "/aws/lambda/invoice-fn"}),
                    c.LAMBDA_WORKER.but(ip=c.LAMBDA_FLEET_B).call(c.at(1), "logs:PutLogEvents",
                                                                    {"logGroupName": "/aws/lambda/invoice-fn"}),
                    c.LAMBDA_FN.but(ip=c.LAMBDA_FLEET_B, agent="AWS Internal").call(c.at(2), "kms:Decrypt", {
                        "encryptionContext": {"aws:lambda:FunctionArn": c.FUNCTION_ARN},
                        "encryptionAlgorithm": "SYMMETRIC_DEFAULT"})],
                   c.LAMBDA_HISTORY),
    )

    def check(self, look: Look) -> Iterable[Hit]:
        ev, profile = look.ev, look.profile
        if ev.inbound or look.actor != Actor.TOOL and look.actor != Actor.CONSOLE:
            return
        runtime = look.runtime
        if runtime == "EC2":
            return  # instance roles: instance-credentials-off-instance
        where = network_class(look.net)
        if where not in ("internet", "cloud", "aws"):
            return
        marked = sum(entry[0] for family, entry in profile.facets["agent"].items() if runtime_of(family))
        total = profile.seen["agent"]
        if runtime is None:
            if total < MIN_CALLS or marked / total < MIN_RUNTIME_SHARE:
                return
            runtimes = sorted({r for f in profile.facets["agent"] if (r := runtime_of(f))})
        else:
            runtimes = [runtime]
        if where == "aws":
            if not (profile.mature and look.new.get("agent")):
                return
            severity, place = "medium", f"inside AWS ({look.net}) with a client it never used"
        else:
            severity, place = "high", f"from outside AWS ({look.net})"
        history = (f" ({marked:,} of {total:,} calls so far carried the runtime's mark)" if total else "")
        yield Hit(severity, 0.9, f"{look.info.arn} runs in {', '.join(runtimes)}{history}, but its credentials "
                                 f"were used {place} by {look.agent}, not by the runtime nor an AWS service: "
                                 f"{look.what()}. {look.normally()}",
                  {"runtimes": runtimes, "runtime_share": round(marked / total, 3) if total else None,
                   "network": look.net, "network_class": where, "agent": look.agent, "hostile": True},
                  key=look.net)
