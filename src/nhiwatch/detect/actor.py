"""Who acted: for every call made with an identity's credentials, decide whether it was the workload's
own code, an AWS service acting with the identity, an AWS agent, a console session or a person's tool.

This matters because AWS services use a role's credentials all the time, from AWS's own fleet: the
Lambda service writes the function's logs with its execution role (user agent `awslambda-worker`,
a new fleet address on almost every cold start), the Lambda runtime decrypts the function's
environment (`kms:Decrypt` with encryption context `aws:lambda:FunctionArn`), CloudFormation makes
a stack's IAM calls with the deploy role's session (`invokedBy: cloudformation.amazonaws.com`).
None of that is "credentials used elsewhere", and none of it says anything about the workload.

Everything in an event except `invokedBy` and the source address is attacker-controlled text, so a
user-agent marker alone never makes a call a service's: it must come from an AWS address too.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache

from nhiwatch.detect.features import runtime_of
from nhiwatch.detect.profile import Ev
from nhiwatch.knowledge.netranges import lookup


class Actor(str, Enum):
    SERVICE = "aws-service"   # an AWS service acting with the identity (invokedBy, service hosts, Lambda worker)
    AGENT = "aws-agent"       # an AWS agent on the workload's host (SSM agent, ECS agent, CloudWatch agent)
    CODE = "workload"         # the workload's own code: an SDK that names its AWS runtime
    CONSOLE = "console"       # a console or browser session
    TOOL = "tool"             # a person's or a pipeline's tool: CLI, SDK, Terraform ... with no runtime mark


# User agents AWS's own components send. Sources: CloudTrail records of the Lambda service
# (`awslambda-worker`), ECS (`Amazon ECS Agent`), SSM (`amazon-ssm-agent`), CloudWatch agent (`CWAgent`),
# CodeDeploy (`codedeploy-agent`), EKS (`aws-node`/`amazon-vpc-cni`), and service calls logged with the
# service's host name as the user agent (`cloudformation.amazonaws.com`, `AWS Internal`).
SERVICE_AGENTS = re.compile(r"^(awslambda-worker|AWS Internal|aws-internal/|[a-z0-9-]+(\.[a-z0-9-]+)*\.amazonaws\.com"
                            r"($|[ /]))")
HOST_AGENTS = re.compile(r"(amazon-ssm-agent|Amazon ECS Agent|ecs-agent|CWAgent|codedeploy-agent|aws-node|"
                         r"amazon-vpc-cni|ec2-instance-connect|aws-ec2-instance-connect)", re.IGNORECASE)
LAMBDA_ENV_CONTEXT = "aws:lambda:FunctionArn"


def aws_owned(ip: str | None) -> bool:
    """Whether an address is in AWS's published ranges."""
    owner = lookup(ip) if ip else None
    return owner is not None and owner.provider == "aws"


@lru_cache(maxsize=65536)
def _agent_marks(agent: str) -> tuple[bool, bool, bool]:
    """(an AWS service's agent, the Lambda worker's, an AWS agent on a host): per distinct agent string."""
    return bool(SERVICE_AGENTS.match(agent)), agent.startswith("awslambda-worker"), bool(HOST_AGENTS.search(agent))


def actor_of(ev: Ev, agent_family: str) -> Actor:
    """Who made this call with the identity's credentials."""
    if ev.invoked_by or ev.ip_kind in ("aws_service", "aws_internal"):
        return Actor.SERVICE
    service_agent, lambda_worker, host_agent = _agent_marks(ev.agent or "")
    if service_agent and aws_owned(ev.ip):
        return Actor.SERVICE
    if lambda_worker and ev.api.startswith("logs:"):
        # The Lambda worker only ever writes the function's logs; trusted even from an address newer than
        # the shipped ranges, since a log write is all a forged agent would get.
        return Actor.SERVICE
    if ev.api == "kms:Decrypt" and ev.params and LAMBDA_ENV_CONTEXT in ev.params and aws_owned(ev.ip):
        return Actor.SERVICE  # the Lambda runtime decrypting the function's environment at cold start
    if host_agent:
        return Actor.AGENT
    if runtime_of(agent_family):
        return Actor.CODE
    if agent_family in ("console", "browser"):
        return Actor.CONSOLE
    return Actor.TOOL

