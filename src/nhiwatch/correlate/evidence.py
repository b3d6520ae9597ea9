"""What may join two identities into one incident, and what may not.

A link says "the same hands": the same machine, the same credential, the same client. Evidence that
strangers share by design says nothing of the kind, so it never links:
- an address no single actor owns: a cloud provider's pool (thousands of tenants), a private, CGNAT,
  loopback or documentation address (every network has one), or an obviously made-up one (1.2.3.4,
  111.111.111.111) that sample and test data reuse;
- an access key id that is not one: AWS's documentation key, a truncated or redacted value ("1111",
  "SAMPLE_ACCESS_KEY"), or a synthetic pattern (repeated or sequential characters);
- a common client: a browser or the console, an AWS SDK or CLI (or a generic HTTP library) whose user
  agent carries nothing of the caller's own, and placeholder strings.
Each check returns why the value cannot link (for the record), or None when it may.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from nhiwatch.detect.actor import SERVICE_AGENTS
from nhiwatch.detect.features import agent_family, runtime_of
from nhiwatch.knowledge.netranges import lookup

# ----------------------------------------------------------------------------------------------
# Addresses


def _sequential(values: list[int]) -> bool:
    steps = {b - a for a, b in zip(values, values[1:])}
    return steps in ({1}, {-1})


@lru_cache(maxsize=65536)
def unlinkable_address(ip: str | None) -> str | None:
    """Why an address cannot tie two identities together, or None for one a single actor may own."""
    if not ip:
        return "no address"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "not an IP address"
    if not address.is_global:
        # RFC 1918, CGNAT (100.64/10), loopback, link-local, documentation (192.0.2/24 ...), ULA, reserved
        return "a private, shared (CGNAT), documentation or reserved address"
    owner = lookup(ip)
    if owner is not None:
        return f"a cloud address ({owner.pool}), shared by the provider's tenants"
    if address.version == 4:
        octets = [int(o) for o in ip.split(".")]
        if len(set(octets)) == 1 or _sequential(octets):
            return "a placeholder address"
    return None


# ----------------------------------------------------------------------------------------------
# Access keys

_KEY = re.compile(r"^(AKIA|ASIA|ABIA|ACCA)([A-Z0-9]{16})$")
_KEY_WORDS = ("EXAMPLE", "SAMPLE", "REDACTED", "PLACEHOLDER")
_ASCENDING = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@lru_cache(maxsize=65536)
def placeholder_key(key: str | None) -> str | None:
    """Why an access key id cannot be a real credential (so sharing it proves nothing), or None.

    A real id is 20 characters: a 4-letter prefix and 16 random ones. The random part of a real key
    practically never has a run of 6 equal or ascending characters, or 4 distinct characters or fewer."""
    if not key:
        return "no key"
    match = _KEY.match(key)
    if match is None:
        return "not an access key id"
    if any(word in key for word in _KEY_WORDS):
        return "an example or redacted key id"
    body = match.group(2)
    if len(set(body)) <= 4 or re.search(r"(.)\1{5}", body):
        return "a synthetic key id (repeated characters)"
    if any(body[i:i + 6] in _ASCENDING for i in range(len(body) - 5)):
        return "a synthetic key id (a sequence)"
    return None


# ----------------------------------------------------------------------------------------------
# Clients

# Client families whose plain user agent millions of callers send: browsers and the console, the AWS
# CLI and SDKs, infrastructure tools, and generic HTTP libraries.
COMMON_FAMILIES = {"console", "browser", "aws-cli", "boto3", "botocore", "sdk-go", "sdk-go-v2", "sdk-java", "sdk-js",
                   "sdk-dotnet", "sdk-ruby", "sdk-rust", "sdk-php", "terraform", "pulumi", "cdk", "cloudformation",
                   "aws-internal", "ssm-agent", "partner", "python-requests", "python-urllib", "python-httplib2",
                   "curl", "wget", "go-http-client", "okhttp", "apache-httpclient", "java", "aiohttp", "axios",
                   "node-fetch", "awspowershell.common", "aws-toolkit", "mozilla", "unknown", "none"}
# Tokens an SDK or CLI adds by itself: versions, platform, language, retry mode, the command run ...
# Anything else in the agent (an `app/` id, a user-agent suffix, a tool's name) is the caller's own.
_STANDARD_TOKEN = re.compile(
    r"^(aws-cli|aws-sdk-[\w.-]+|boto3|botocore|python|cpython|pypy|linux|darwin|windows(_nt)?|macos|exe|prompt|"
    r"command|md|os|lang|ua|api|cfg|m|io|exec-env|sdk-metrics|jsii-runtime|node(\.js|js)?|java|vendor|vm|"
    r"openjdk[\w.-]*|kotlin|scala|groovy|clojure|jruby|go\d[\w.]*|go|ruby|php|dotnet|\.net[\w.-]*|rust|http|feat|"
    r"client(a)?sync|guzzlehttp|curl|aws-crt|awscrt|crt|s3transfer|apn|hashicorp|terraform|terraform-provider-aws|"
    r"pulumi|aws-cdk|cdk|cloudformation|amazon-ssm-agent|ssm-agent|x86_64[\w.-]*|amd64|arm64|aarch64|i686|"
    r"[\w.-]+\.amazonaws\.com)([/#].*)?$", re.IGNORECASE)
_PLACEHOLDER_AGENT = re.compile(r"example|sample|placeholder|dummy|fake|user[-_ ]?agent", re.IGNORECASE)


@lru_cache(maxsize=65536)
def common_client(user_agent: str | None) -> str | None:
    """Why a user agent cannot tie two identities together, or None for a client distinctive enough."""
    if not user_agent:
        return "no user agent"
    family = agent_family(user_agent)
    if family.startswith("tool:"):
        return None  # an attack tool's or distribution's name is a fingerprint, not a crowd
    if family in ("console", "browser", "mozilla"):
        return "a browser or the console"
    if runtime_of(family) or SERVICE_AGENTS.match(user_agent):
        return "an AWS runtime or service client"
    if _PLACEHOLDER_AGENT.search(user_agent):
        return "a placeholder user agent"
    if family not in COMMON_FAMILIES:
        return None  # a client of its own (a custom tool, an app's name)
    bare = re.sub(r"\([^)]*\)|\[|\]", " ", user_agent)
    if all(_STANDARD_TOKEN.match(token) or re.split(r"[/#]", token, 1)[0].lower() == family
           for token in bare.split()):
        return f"a common client ({family}) with nothing of the caller's own"
    return None
