"""nhiwatch.knowledge: network ownership from providers' published ranges, and vendor AWS accounts.

Expectations are computed here, independently of the product's code, from the published files in
../shared/data (a plain longest-prefix search over every prefix), and checked against lookup()."""

from __future__ import annotations

import datetime
import functools
import gzip
import ipaddress
import json
import random
import shutil
import threading
from collections import defaultdict
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nhiwatch.cli.app import app
from nhiwatch.knowledge import build_data, netranges, vendors
from nhiwatch.knowledge.netranges import NetOwner, lookup

SHARED = Path(__file__).parents[1].parent / "shared"
NETRANGES = SHARED / "data" / "netranges"
VENDORS = SHARED / "data" / "vendors"

pytestmark = pytest.mark.skipif(not (NETRANGES.is_dir() and VENDORS.is_dir()),
                                reason=f"shared data missing: {SHARED}/data/netranges and vendors")

FILES = {"aws": "aws-ip-ranges.json", "github": "github-ip-ranges.json", "azure": "microsoft-azure-ip-ranges.json",
         "gcp": "google-cloud-ip-ranges.json", "oracle": "oracle-cloud-ip-ranges.json",
         "cloudflare-v4": "cloudflare-v4-ip-ranges.txt", "cloudflare-v6": "cloudflare-v6-ip-ranges.txt",
         "digitalocean": "digitalocean.csv", "linode": "linode.txt"}


def _read_json(name: str):
    return json.loads((NETRANGES / name).read_text())


def _lines(name: str) -> list[str]:
    return [line.split(",")[0].strip() for line in (NETRANGES / name).read_text().splitlines()
            if line.strip() and not line.startswith("#")]


@functools.cache
def published() -> list[tuple[ipaddress._BaseNetwork, str, str | None, str | None]]:
    """Every published prefix as (network, provider, service, region), read straight from the files."""
    rows = []
    aws = _read_json("aws-ip-ranges.json")
    rows += [(p["ip_prefix"], "aws", p["service"], p["region"]) for p in aws["prefixes"]]
    rows += [(p["ipv6_prefix"], "aws", p["service"], p["region"]) for p in aws["ipv6_prefixes"]]
    github = _read_json("github-ip-ranges.json")
    rows += [(p, "github-actions", None, None) for p in github["actions"] + github.get("actions_macos", [])]
    for value in _read_json("microsoft-azure-ip-ranges.json")["values"]:
        if value["name"].startswith("AzureCloud."):
            rows += [(p, "azure", None, value["properties"]["region"] or value["name"][11:])
                     for p in value["properties"]["addressPrefixes"]]
    rows += [(p.get("ipv4Prefix") or p["ipv6Prefix"], "gcp", None, p["scope"])
             for p in _read_json("google-cloud-ip-ranges.json")["prefixes"]]
    rows += [(c["cidr"], "oracle", c["tags"][-1], r["region"])
             for r in _read_json("oracle-cloud-ip-ranges.json")["regions"] for c in r["cidrs"]]
    for name, provider in (("cloudflare-v4-ip-ranges.txt", "cloudflare"), ("cloudflare-v6-ip-ranges.txt", "cloudflare"),
                           ("digitalocean.csv", "digitalocean"), ("linode.txt", "linode")):
        rows += [(p, provider, None, None) for p in _lines(name)]
    return [(ipaddress.ip_network(p, strict=False), provider, service, region) for p, provider, service, region in rows]


@functools.cache
def _index() -> dict[tuple[int, int], dict[int, list]]:
    index: dict[tuple[int, int], dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for net, provider, service, region in published():
        index[(net.version, net.prefixlen)][int(net.network_address)].append((net, provider, service, region))
    return index


def reference(ip: str) -> list[tuple] | None:
    """All published rows at the longest prefix holding ip (a plain search, one prefix length at a time)."""
    addr = ipaddress.ip_address(ip)
    bits = addr.max_prefixlen
    number = int(addr)
    index = _index()
    for plen in range(bits, -1, -1):
        rows = index.get((addr.version, plen), {}).get((number >> (bits - plen)) << (bits - plen))
        if rows:
            return rows
    return None


def _middle(net) -> str:
    return str(net.network_address + net.num_addresses // 2)


def _isolated(net, accept) -> bool:
    """True when the longest prefix holding net's middle address is net itself, and accept(its rows)."""
    rows = reference(_middle(net))
    return bool(rows) and rows[0][0] == net and accept(rows)


def _pick(candidates, accept, count: int = 5) -> list:
    chosen = []
    for net in candidates:
        if net not in chosen and _isolated(net, accept):
            chosen.append(net)
            if len(chosen) == count:
                break
    assert chosen, "no suitable prefix in the shared data"
    return chosen


@pytest.fixture(autouse=True)
def _fresh_snapshot(monkeypatch, tmp_path):
    """Each test starts from the shipped snapshot (an empty nhiwatch home) and leaves no state behind."""
    monkeypatch.setenv("NHIWATCH_HOME", str(tmp_path / "home"))
    netranges.reload()
    yield
    netranges.reload()


# ---------------------------------------------------------------------------------------------
# lookup against the published files

def test_aws_ec2_us_east_1_ipv4_wins_over_amazon():
    nets = [net for net, provider, service, region in published()
            if provider == "aws" and service == "EC2" and region == "us-east-1" and net.version == 4]
    # the same prefix listed under AMAZON and EC2 and under nothing else: EC2 must win the tie
    chosen = _pick(nets, lambda rows: {r[2] for r in rows} == {"AMAZON", "EC2"})
    for net in chosen:
        owner = lookup(_middle(net))
        assert owner == NetOwner("aws", "EC2", "us-east-1"), (net, owner)
        assert owner.pool == "aws:EC2:us-east-1"
        assert lookup(str(net.network_address)) == owner and lookup(str(net.broadcast_address)) == owner


def test_aws_narrower_service_wins_a_tie_with_ec2():
    nets = [net for net, provider, service, _r in published() if provider == "aws" and service == "S3"]
    chosen = _pick(nets, lambda rows: {r[2] for r in rows} == {"AMAZON", "EC2", "S3"})
    for net in chosen:
        assert lookup(_middle(net)).service == "S3", net


def test_aws_ipv6():
    nets = [net for net, provider, service, _r in published()
            if provider == "aws" and service == "EC2" and net.version == 6]
    chosen = _pick(nets, lambda rows: {r[2] for r in rows} <= {"AMAZON", "EC2"} and len({r[3] for r in rows}) == 1)
    for net in chosen:
        region = reference(_middle(net))[0][3]
        assert lookup(_middle(net)) == NetOwner("aws", "EC2", region), net
        assert lookup(_middle(net)).pool == f"aws:EC2:{region}"


def _inside_azure(net) -> bool:
    """Some Azure prefix as long as net or shorter holds it."""
    bits = net.max_prefixlen
    number = int(net.network_address)
    index = _index()
    return any(row[1] == "azure"
               for plen in range(net.prefixlen, -1, -1)
               for row in index.get((net.version, plen), {}).get((number >> (bits - plen)) << (bits - plen), []))


def test_github_actions_inside_azure_reports_github_actions():
    actions = [net for net, provider, *_ in published() if provider == "github-actions"]
    inside = [net for net in actions if _inside_azure(net)]
    assert len(inside) > 1000  # the runners are in Azure's published space, mostly the very same prefixes
    same = _pick(inside, lambda rows: {r[1] for r in rows} == {"github-actions", "azure"}, count=10)
    narrower = _pick(inside, lambda rows: {r[1] for r in rows} == {"github-actions"}, count=5)
    for net in same + narrower:
        owner = lookup(_middle(net))
        assert owner == NetOwner("github-actions", None, None) and owner.pool == "github-actions", net


def test_azure_region():
    nets = [net for net, provider, _s, region in published() if provider == "azure" and region == "eastus"]
    chosen = _pick(nets, lambda rows: {r[1] for r in rows} == {"azure"})
    for net in chosen:
        assert lookup(_middle(net)) == NetOwner("azure", None, "eastus"), net
        assert lookup(_middle(net)).pool == "azure:eastus"


def test_gcp_region():
    nets = [net for net, provider, _s, region in published() if provider == "gcp" and region == "us-central1"]
    chosen = _pick(nets, lambda rows: {r[1] for r in rows} == {"gcp"})
    for net in chosen:
        assert lookup(_middle(net)) == NetOwner("gcp", None, "us-central1"), net
        assert lookup(_middle(net)).pool == "gcp:us-central1"


def test_cloudflare_v4_and_v6_and_others():
    for name in ("cloudflare-v4-ip-ranges.txt", "cloudflare-v6-ip-ranges.txt"):
        for prefix in _lines(name):
            net = ipaddress.ip_network(prefix)
            assert lookup(_middle(net)) == NetOwner("cloudflare", None, None), net
            assert lookup(_middle(net)).pool == "cloudflare"
    for provider in ("digitalocean", "linode", "oracle"):
        nets = [net for net, p, *_ in published() if p == provider]
        chosen = _pick(nets, lambda rows, p=provider: {r[1] for r in rows} == {p}, count=3)
        for net in chosen:
            assert lookup(_middle(net)).provider == provider, net
    oracle = lookup("129.80.0.1")
    assert oracle == NetOwner("oracle", "OCI", "us-ashburn-1") and oracle.pool == "oracle:OCI:us-ashburn-1"


@pytest.mark.parametrize("ip", ["192.0.2.10", "198.51.100.7", "203.0.113.200", "10.1.2.3", "172.16.0.1",
                                "192.168.1.1", "127.0.0.1", "100.64.0.1", "::1", "fe80::1", "2001:db8::1",
                                "0.0.0.0", "not an ip", "", "999.1.1.1", "3.80.0.10/24", None, 3232235777])
def test_non_global_and_invalid_give_none(ip):
    assert lookup(ip) is None


def test_ipv4_mapped_ipv6_and_spaces():
    nets = [net for net, provider, service, region in published()
            if provider == "aws" and service == "EC2" and region == "us-east-1" and net.version == 4]
    net = _pick(nets, lambda rows: {r[2] for r in rows} == {"AMAZON", "EC2"}, count=1)[0]
    assert lookup(f"::ffff:{_middle(net)}") == lookup(f" {_middle(net)} ") == NetOwner("aws", "EC2", "us-east-1")


def test_lookup_agrees_with_a_plain_search_on_100k_addresses():
    rng = random.Random(20250725)
    nets = [row[0] for row in published()]
    addresses = []
    for i in range(100_000):
        kind = i % 4
        if kind in (0, 1):  # inside a published prefix
            net = nets[rng.randrange(len(nets))]
            addresses.append(str(net.network_address + rng.randrange(min(net.num_addresses, 1 << 64))))
        elif kind == 2:
            addresses.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
        else:
            addresses.append(str(ipaddress.IPv6Address((0x2 << 124) | rng.getrandbits(124))))
    found = sum(lookup(a) is not None for a in addresses)
    assert found > 45_000  # half of them are inside published prefixes

    for address in addresses[:4000]:
        rows = reference(address)
        owner = lookup(address)
        if rows is None or not ipaddress.ip_address(address).is_global:
            assert owner is None, address
            continue
        assert owner is not None, address
        providers = {r[1] for r in rows}
        if "github-actions" in providers:
            assert owner.provider == "github-actions", address
            continue
        assert (owner.provider, owner.service, owner.region) in {r[1:] for r in rows}, (address, rows, owner)
        if any(r[2] not in (None, "AMAZON") for r in rows):
            assert owner.service != "AMAZON", address


# ---------------------------------------------------------------------------------------------
# the shipped data

def test_shipped_snapshot_is_built_from_the_shared_files():
    shipped = netranges.shipped_snapshot()
    assert len(shipped) < 1_000_000
    built = build_data.netranges_snapshot(NETRANGES)
    assert gzip.decompress(shipped) == gzip.decompress(built), \
        "regenerate: python -m nhiwatch.knowledge.build_data ../shared/data"
    header = json.loads(gzip.decompress(shipped))
    assert set(header["sources"]) == set(FILES)
    for source, meta in header["sources"].items():
        assert meta["url"].startswith("https://") and meta["retrieved"] == "2025-07-25"
        assert meta["via"].startswith("femueller/cloud-ip-ranges@60937f4c")
        assert meta["prefixes"] > 0
    assert header["sources"]["aws"]["published"] == "2025-07-24T20:23:14Z"
    info = netranges.snapshot_info()
    assert info["origin"] == "shipped" and info["date"] == "2025-07-25"
    expected = defaultdict(set)
    for net, provider, service, region in published():
        expected[provider].add((net, service, region))
    assert info["providers"] == {provider: len(rows) for provider, rows in expected.items()}


def test_shipped_vendor_table_is_built_from_accounts_yaml():
    shipped = (Path(vendors.__file__).parent / "data" / "vendors.json").read_bytes()
    assert shipped == build_data.vendors_table(VENDORS)
    source = vendors.vendors_source()
    assert source["repo"] == "fwdcloudsec/known_aws_accounts" and source["license"] == "Apache-2.0"
    assert source["commit"].startswith("c2922afb")


def test_the_small_yaml_reader_reads_accounts_yaml_like_pyyaml():
    yaml = pytest.importorskip("yaml")
    text = (VENDORS / "accounts.yaml").read_text()
    assert build_data.parse_accounts_yaml(text) == yaml.safe_load(text)
    with pytest.raises(ValueError):
        build_data.parse_accounts_yaml("- name: 'x'\n  accounts: ['1'\n")
    with pytest.raises(ValueError):
        build_data.parse_accounts_yaml("key: value\n")


def test_vendor_for_account():
    entries = build_data.parse_accounts_yaml((VENDORS / "accounts.yaml").read_text())
    enabled = [e for e in entries if e.get("enabled", True)]
    assert vendors.vendor_for_account("464622532012").name == "Datadog"
    assert vendors.vendor_for_account("arn:aws:iam::464622532012:root").name == "Datadog"
    for entry in enabled[::17]:
        for account in entry["accounts"]:
            vendor = vendors.vendor_for_account(account)
            assert vendor is not None and vendor.name == entry["name"], account
            source = entry.get("source")
            assert vendor.source == (source[0] if source else None)
            assert vendor.aws_service == (entry.get("type") == "aws")
    every = {a for e in entries for a in e["accounts"]}
    assert vendors.known_vendor_accounts() == {a for e in enabled for a in e["accounts"]}
    assert "123456789012" not in every and vendors.vendor_for_account("123456789012") is None
    assert vendors.vendor_for_account("not-an-account") is None and vendors.vendor_for_account("") is None
    disabled = [a for e in entries if e.get("enabled") is False for a in e["accounts"]]
    assert disabled and all(vendors.vendor_for_account(a) is None for a in disabled)
    elb = vendors.vendor_for_account("127311923021")
    assert elb.name == "ELB logs" and elb.aws_service


# ---------------------------------------------------------------------------------------------
# nhiwatch ranges update / show / info

class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server on 127.0.0.1 serving copies of the shared files (Azure behind a download page,
    and Linode with one extra prefix so the refreshed snapshot can be told apart)."""
    root = tmp_path / "mirror"
    root.mkdir()
    for name in FILES.values():
        shutil.copy(NETRANGES / name, root / name)
    with (root / "linode.txt").open("a") as fh:
        fh.write("9.9.9.0/24,CH,CH-ZH,Zurich,\n")
    (root / "azure.html").write_text('<html><body><a class="download" '
                                     'href="/files/ServiceTags_Public_20250721.json">Download</a></body></html>')
    (root / "files").mkdir()
    (root / "files" / "ServiceTags_Public_20250721.json").write_bytes((NETRANGES / FILES["azure"]).read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_ranges_update_from_a_mirror_with_one_provider_failing(mirror, tmp_path):
    assert reference("9.9.9.9") is None and lookup("9.9.9.9") is None
    urls = {source: f"{mirror}/{name}" for source, name in FILES.items()}
    urls["azure"] = f"{mirror}/azure.html"
    urls["oracle"] = f"{mirror}/missing.json"  # 404
    args = [a for source, url in urls.items() for a in ("--url", f"{source}={url}")]
    result = _invoke("ranges", "update", *args, "--json")
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)
    assert report["failed"] == ["oracle"]
    assert report["sources"]["oracle"]["status"] == "failed" and "404" in report["sources"]["oracle"]["error"]
    assert report["sources"]["oracle"]["kept_prefixes"] > 0
    assert all(r["status"] == "updated" for s, r in report["sources"].items() if s != "oracle")
    saved = tmp_path / "home" / "netranges.json.gz"
    assert report["saved"] == str(saved) and saved.is_file()

    # later lookups use the user's snapshot: the extra Linode prefix, and Oracle's previous data kept
    assert lookup("9.9.9.9") == NetOwner("linode", None, None)
    assert lookup("129.80.0.1") == NetOwner("oracle", "OCI", "us-ashburn-1")
    net = _pick([n for n, p, _s, r in published() if p == "azure" and r == "eastus"],
                lambda rows: {r[1] for r in rows} == {"azure"}, count=1)[0]
    assert lookup(_middle(net)) == NetOwner("azure", None, "eastus")
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    info = netranges.snapshot_info()
    assert info["origin"] == "user" and info["path"] == str(saved)
    assert info["sources"]["oracle"]["retrieved"] == "2025-07-25"  # kept from the shipped snapshot
    assert info["sources"]["aws"]["url"] == urls["aws"] and info["sources"]["aws"]["retrieved"] == today
    assert info["providers"]["linode"] == len({n for n, p, *_ in published() if p == "linode"}) + 1

    shown = json.loads(_invoke("ranges", "show", "9.9.9.9", "--json").stdout)
    assert shown["owner"] == {"provider": "linode", "service": None, "region": None} and shown["pool"] == "linode"
    assert shown["snapshot"]["origin"] == "user"


def test_ranges_update_fails_when_nothing_can_be_fetched(mirror, tmp_path):
    args = [a for source in FILES for a in ("--url", f"{source}={mirror}/nothing-{source}")]
    result = _invoke("ranges", "update", *args, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert sorted(report["failed"]) == sorted(FILES) and report["saved"] is None
    assert not (tmp_path / "home" / "netranges.json.gz").exists()
    assert netranges.snapshot_info()["origin"] == "shipped"


def test_ranges_update_rejects_an_unknown_source():
    result = _invoke("ranges", "update", "--url", "nosuch=http://127.0.0.1:9/x", "--json")
    assert result.exit_code == 2 and "unknown source" in json.loads(result.stdout)["error"]


def test_ranges_show_and_info_json():
    nets = [net for net, provider, service, region in published()
            if provider == "aws" and service == "EC2" and region == "us-east-1" and net.version == 4]
    net = _pick(nets, lambda rows: {r[2] for r in rows} == {"AMAZON", "EC2"}, count=1)[0]
    result = _invoke("ranges", "show", _middle(net), "--json")
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["owner"] == {"provider": "aws", "service": "EC2", "region": "us-east-1"}
    assert shown["pool"] == "aws:EC2:us-east-1" and shown["snapshot"]["origin"] == "shipped"

    private = json.loads(_invoke("ranges", "show", "10.1.2.3", "--json").stdout)
    assert private["owner"] is None and private["pool"] is None
    assert _invoke("ranges", "show", "nope", "--json").exit_code == 2

    result = _invoke("ranges", "info", "--json")
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["origin"] == "shipped" and info["date"] == "2025-07-25"
    assert set(info["providers"]) == {"aws", "azure", "cloudflare", "digitalocean", "gcp", "github-actions",
                                      "linode", "oracle"}
    assert info["sources"]["github"]["url"] == "https://api.github.com/meta"
    assert _invoke("ranges", "--help").exit_code == 0
    for command in ("update", "show", "info"):
        result = _invoke("ranges", command, "--help")
        assert result.exit_code == 0 and "--json" in result.stdout, command
