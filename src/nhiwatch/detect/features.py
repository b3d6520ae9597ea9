"""What an event says about where and how it was made: its network, its client, its kind of call.

These are the facets a baseline counts. They are coarse on purpose: a /24 rather than an address
(NAT pools and Lambda hosts rotate within one), a client family rather than a version string.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from nhiwatch.knowledge.netranges import lookup

# The error codes AWS answers a call the caller is not allowed to make with (IAM, EC2's two spellings,
# the JSON protocol services').
DENIED = ("AccessDenied", "Client.UnauthorizedOperation", "UnauthorizedOperation", "AccessDeniedException")

# Security tools people attack AWS with; GuardDuty's PenTest findings name the same distributions.
ATTACK_TOOLS = ("pacu", "stratus-red-team", "kali", "parrot", "pentoo", "cloudgoat", "cloudfox", "weirdaal",
                "endgame", "s3scanner", "nimbostratus", "awspx", "trufflehog")
_EXEC_ENV = re.compile(r"exec-env/(AWS_[A-Za-z]+)")
_TOOLS = (("console.amazonaws.com", "console"), ("signin.amazonaws.com", "console"), ("Mozilla/", "browser"),
          ("aws-cli/", "aws-cli"), ("Boto3/", "boto3"), ("Botocore/", "botocore"), ("botocore/", "botocore"),
          ("aws-sdk-go-v2", "sdk-go-v2"), ("aws-sdk-go", "sdk-go"), ("aws-sdk-java", "sdk-java"),
          ("aws-sdk-js", "sdk-js"), ("aws-sdk-nodejs", "sdk-js"), ("aws-sdk-dotnet", "sdk-dotnet"),
          ("aws-sdk-ruby", "sdk-ruby"), ("aws-sdk-rust", "sdk-rust"), ("aws-sdk-php", "sdk-php"),
          ("Terraform", "terraform"), ("terraform", "terraform"), ("Pulumi", "pulumi"), ("aws-cdk", "cdk"),
          ("CloudFormation", "cloudformation"), ("AWS Internal", "aws-internal"), ("aws-internal", "aws-internal"),
          ("amazon-ssm-agent", "ssm-agent"), ("S3Console", "console"), ("APN/", "partner"))


@lru_cache(maxsize=65536)
def agent_family(user_agent: str | None) -> str:
    """A client family such as 'boto3@AWS_Lambda' or 'aws-cli'; 'tool:<name>' for attack tools."""
    if not user_agent:
        return "none"
    lowered = user_agent.lower()
    for tool in ATTACK_TOOLS:
        if tool in lowered:
            return f"tool:{tool}"
    family = next((name for marker, name in _TOOLS if marker in user_agent), None)
    if family is None:
        family = re.split(r"[/ (]", user_agent, 1)[0][:40].lower() or "unknown"
    runtime = _EXEC_ENV.search(user_agent)
    if runtime:
        family += "@" + runtime.group(1)
    elif "amazon-ssm-agent" in user_agent and family != "ssm-agent":
        family += "@ssm-agent"
    return family


def runtime_of(family: str) -> str | None:
    """The AWS runtime a client family says it runs in (AWS_Lambda, AWS_ECS...), if any."""
    return family.split("@", 1)[1] if "@" in family else None


# RFC 1918 and carrier-grade NAT: addresses inside a VPC or a corporate network. (The stdlib's
# is_private also counts documentation ranges, which are public-looking on purpose.)
_PRIVATE_V4 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                       "100.64.0.0/10", "127.0.0.0/8"))


@lru_cache(maxsize=262144)
def network_of(ip: str | None, kind: str | None, vpce: str | None = None) -> tuple[str, str]:
    """(network, wide network) of a source.

    An address in a provider's published ranges is its provider pool (`aws:EC2:us-east-1`, wide:
    `aws`): Lambda's fleet, a NAT gateway's next address or a GitHub runner is one network, not a
    new one per address. Other addresses are a /24 and its /16 (IPv6: /48 and /32); private ranges,
    VPC endpoints and AWS service or internal markers are their own kinds."""
    if vpce:
        return f"vpce:{vpce}", "vpce"
    if not ip:
        return "none", "none"
    if kind == "aws_service":
        return f"service:{ip}", "aws-service"
    if kind == "aws_internal":
        return "aws-internal", "aws-internal"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return f"host:{ip[:60]}", "host"
    if address.version == 4 and any(address in net for net in _PRIVATE_V4):
        octets = ip.split(".")
        return f"private:{'.'.join(octets[:3])}.0/24", f"private:{'.'.join(octets[:2])}.0.0/16"
    owner = lookup(ip)
    if owner is not None:
        return owner.pool, owner.provider
    if address.version == 4:
        octets = ip.split(".")
        return f"{'.'.join(octets[:3])}.0/24", f"{'.'.join(octets[:2])}.0.0/16"
    network = ipaddress.ip_network(f"{ip}/48", strict=False)
    return str(network), str(ipaddress.ip_network(f"{ip}/32", strict=False))


CLOUD_PROVIDERS = ("aws", "azure", "gcp", "oracle", "github-actions", "cloudflare", "digitalocean", "linode")


def network_class(net: str) -> str:
    """What kind of network a `network_of` value is: aws, cloud (another provider), private, vpce,
    service (an AWS service or AWS Internal), none, or internet (an ISP, a VPS, anything unlisted)."""
    head = net.split(":", 1)[0]
    if head == "aws":
        return "aws"
    if head in CLOUD_PROVIDERS:
        return "cloud"
    if head in ("private", "vpce"):
        return head
    if head in ("service", "aws-internal"):
        return "service"
    if net == "none" or head == "host":
        return "none"
    return "internet"


def pool_region(net: str) -> str | None:
    """The region of a provider pool such as aws:EC2:us-west-2."""
    parts = net.split(":")
    return parts[-1] if parts[0] == "aws" and len(parts) == 3 else None


def account_of(arn: str | None) -> str | None:
    """The account id in an ARN, if it has one."""
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


READ_PREFIXES = ("Describe", "List", "Get", "Head", "Search", "Lookup", "Scan", "Query", "BatchGet", "Select")


def is_read(event_name: str) -> bool:
    return event_name.startswith(READ_PREFIXES)


def github_owner(subject: str | None) -> str | None:
    """The owner part of a GitHub OIDC subject 'repo:owner/name:...'."""
    if subject and subject.startswith("repo:"):
        return subject[5:].split("/", 1)[0].split("@", 1)[0]
    if subject and subject.startswith("project_path:"):
        return subject[13:].split("/", 1)[0]
    return None
