"""Real published address ranges, a compact copy for the simulator.

Source addresses of AWS-hosted things (Lambda's fleet, EC2 instances, NAT gateways, CodeBuild
hosts, vendors running in AWS) are drawn from AWS's own published prefixes of the right service
and region, and GitHub-hosted runners from GitHub's published "actions" ranges, so that a
detector that knows whose network an address is in sees what it would see in a real account.

Copied from the snapshot in shared/data/netranges (femueller/cloud-ip-ranges @ 60937f4, 2025-07-25):
  aws-ip-ranges.json     = https://ip-ranges.amazonaws.com/ip-ranges.json (createDate 2025-07-24-20-23-14)
  github-ip-ranges.json  = https://api.github.com/meta ("actions")
A handful of the largest prefixes per service and region; every one below is listed there as is.
"""

from __future__ import annotations

import ipaddress
import random

# service EC2 (instances, Elastic IPs, NAT gateways and Lambda's fleet all use these)
EC2 = {
    "us-east-1": ["44.192.0.0/11", "34.192.0.0/12", "3.208.0.0/12", "34.224.0.0/12", "3.80.0.0/12",
                  "3.224.0.0/12", "18.208.0.0/13", "52.200.0.0/13", "54.80.0.0/13", "35.168.0.0/13",
                  "54.160.0.0/13", "100.24.0.0/13"],
    "us-west-2": ["44.224.0.0/11", "34.208.0.0/12", "35.80.0.0/12", "54.184.0.0/13", "35.160.0.0/13",
                  "52.24.0.0/14", "52.36.0.0/14", "54.148.0.0/15", "18.236.0.0/15"],
    "eu-west-1": ["34.248.0.0/13", "3.248.0.0/13", "34.240.0.0/13", "52.208.0.0/13", "63.32.0.0/14",
                  "54.74.0.0/15"],
}
# service EC2, IPv6 (2600:1f18::/33 is us-east-1's VPC IPv6 space)
EC2_V6 = {
    "us-east-1": ["2600:1f18::/33"],
    "us-west-2": ["2600:1f14::/34"],
    "eu-west-1": ["2a05:d018::/35"],
}
# service CODEBUILD
CODEBUILD = {
    "us-east-1": ["34.228.4.208/28", "44.192.245.160/28", "44.192.255.128/28"],
    "us-west-2": ["35.83.248.40/29", "52.43.76.88/29", "35.82.136.192/29", "44.242.161.24/29"],
    "eu-west-1": ["34.250.63.248/29", "3.251.148.120/29"],
}
# GitHub-hosted runners ("actions"; they run in Azure)
GITHUB_ACTIONS = ["20.42.0.0/17", "20.57.0.0/17", "40.76.0.0/16", "52.234.0.0/17", "13.68.0.0/17",
                  "172.183.0.0/16", "4.246.0.0/17", "20.55.0.0/17", "172.176.0.0/15", "20.102.0.0/17"]
# A monitoring vendor's crawler pool: 3.233.144.0/20 inside EC2 us-east-1's 3.224.0.0/12, plus two
# more us-east-1 EC2 blocks (vendors run their pollers in AWS; the pool is large, a new address most polls).
VENDOR_POOL_US_EAST_1 = ["3.233.144.0/20", "34.224.0.0/12", "44.192.0.0/11"]


def _parse(prefixes: list[str]) -> list[tuple[int, int, int]]:
    out = []
    for text in prefixes:
        net = ipaddress.ip_network(text)
        out.append((int(net.network_address), net.num_addresses, net.version))
    return out


_CACHE: dict[int, list[tuple[int, int, int]]] = {}


def _nets(prefixes: list[str]) -> list[tuple[int, int, int]]:
    key = id(prefixes)
    nets = _CACHE.get(key)
    if nets is None:
        nets = _CACHE[key] = _parse(prefixes)
    return nets


def _format(value: int, version: int) -> str:
    if version == 4:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    return ipaddress.IPv6Address(value).compressed


def _host(base: int, size: int, version: int, offset: int) -> str:
    if version == 4 and size >= 256:
        value = base + offset % size
        value = (value & ~255) | (1 + (value & 255) % 254)  # no .0 or .255
    elif version == 4 and size > 2:
        value = base + 1 + offset % (size - 2)  # a small block: neither its first nor its last address
    else:
        value = base + offset % size
    return _format(value, version)


def address(rng: random.Random, prefixes: list[str]) -> str:
    """A random host address in one of the prefixes."""
    base, size, version = rng.choice(_nets(prefixes))
    return _host(base, size, version, rng.getrandbits(32 if version == 4 else 64) if size > 1 else 0)


def address_for(seed: int, prefixes: list[str]) -> str:
    """The same address for the same seed (an instance keeps its public address)."""
    nets = _nets(prefixes)
    base, size, version = nets[seed % len(nets)]
    spread = random.Random(seed).getrandbits(size.bit_length())
    return _host(base, size, version, spread)


def ec2(rng: random.Random, region: str) -> str:
    return address(rng, EC2.get(region) or EC2["us-east-1"])


def ec2_v6_for(seed: int, region: str) -> str:
    return address_for(seed, EC2_V6.get(region) or EC2_V6["us-east-1"])


def codebuild(rng: random.Random, region: str) -> str:
    return address(rng, CODEBUILD.get(region) or CODEBUILD["us-east-1"])


def github_runner(rng: random.Random) -> str:
    return address(rng, GITHUB_ACTIONS)


def contains(prefixes: list[str], value: str) -> bool:
    """Is the address inside one of the prefixes? (for tests and checks)"""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p) for p in prefixes)
