"""Whose network an IP address is in, from the IP ranges cloud and hosting providers publish.

``lookup("3.80.0.10")`` gives ``NetOwner(provider="aws", service="EC2", region="us-east-1")``. The most
specific (longest) published prefix wins, so a GitHub-hosted Actions runner (whose addresses are
inside Azure's) reports ``github-actions`` and an AWS address listed under AMAZON and under EC2 reports
EC2. Private, loopback, documentation and other non-global addresses, and strings that are not IP
addresses, give None.

Snapshot format (``data/netranges.json.gz`` shipped with nhiwatch; a user's refreshed copy written by
``nhiwatch ranges update`` is ``<home>/netranges.json.gz`` and takes precedence): gzip (mtime 0) of
one UTF-8 JSON object with sorted keys:

  format, version  "nhiwatch-netranges", 1
  date             the snapshot's date: the latest ``retrieved`` of its sources (YYYY-MM-DD)
  sources          {source: {"provider", "url", "retrieved", "published", "prefixes"[, "via"]}}, one per
                   published file (see SOURCES): its official URL, the day it was fetched, the
                   provider's own date or version stamp when the file has one, the number of prefixes
                   kept, and the mirror it came through if it did not come from the URL itself
  labels           [[source, provider, service or null, region or null, rank], ...]
  v4, v6           {"start": [...], "plen": [...], "label": [...]}: one published prefix per position,
                   sorted by (start, plen, label). "start" is delta-encoded (the first value is the
                   first prefix's address as an integer, each next one the difference to the previous
                   start); "plen" is the prefix length; "label" indexes "labels".

``rank`` breaks ties between identical prefixes (the higher wins): GitHub Actions over the Azure range
that holds it; for AWS, which lists one prefix under AMAZON and under EC2, S3, ..., any named service
over AMAZON, and between two named services the narrower one (the one listing fewer prefixes, so
S3 over EC2). What is kept per provider: AWS every prefix with service and region; GitHub the
"actions" and "actions_macos" runner ranges; Azure only the regional ``AzureCloud.<region>`` tags (the
per-service tags repeat the same space); Google Cloud scope as region; Oracle region and tag
(OCI, OSN, OBJECT_STORAGE; the last tag when several); Cloudflare, DigitalOcean and Linode the
prefixes alone.
"""

from __future__ import annotations

import datetime
import functools
import gzip
import ipaddress
import json
import os
import re
import threading
import zlib
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import NamedTuple

FORMAT = "nhiwatch-netranges"
FORMAT_VERSION = 1
SNAPSHOT_NAME = "netranges.json.gz"


class Source(NamedTuple):
    provider: str
    url: str
    file: str  # the file's name in the shared snapshot folder (and in femueller/cloud-ip-ranges)


# One entry per published file. The URLs are the providers' own; `nhiwatch ranges update` fetches them.
SOURCES: dict[str, Source] = {
    "aws": Source("aws", "https://ip-ranges.amazonaws.com/ip-ranges.json", "aws-ip-ranges.json"),
    "github": Source("github-actions", "https://api.github.com/meta", "github-ip-ranges.json"),
    # Azure has no stable URL for the file: this page links the current ServiceTags_Public_<date>.json.
    "azure": Source("azure", "https://www.microsoft.com/en-us/download/details.aspx?id=56519",
                    "microsoft-azure-ip-ranges.json"),
    "gcp": Source("gcp", "https://www.gstatic.com/ipranges/cloud.json", "google-cloud-ip-ranges.json"),
    "oracle": Source("oracle", "https://docs.oracle.com/iaas/tools/public_ip_ranges.json",
                     "oracle-cloud-ip-ranges.json"),
    "cloudflare-v4": Source("cloudflare", "https://www.cloudflare.com/ips-v4", "cloudflare-v4-ip-ranges.txt"),
    "cloudflare-v6": Source("cloudflare", "https://www.cloudflare.com/ips-v6", "cloudflare-v6-ip-ranges.txt"),
    "digitalocean": Source("digitalocean", "https://digitalocean.com/geo/google.csv", "digitalocean.csv"),
    "linode": Source("linode", "https://geoip.linode.com/", "linode.txt"),
}


class NetOwner(NamedTuple):
    provider: str
    service: str | None
    region: str | None

    @property
    def pool(self) -> str:
        """A stable name for the address pool: aws:EC2:us-east-1, github-actions, azure:eastus, ..."""
        return ":".join(part for part in self if part)


# ----------------------------------------------------------------------------------------------
# Parsing the published files

_Row = tuple[str, str | None, str | None, int]  # (prefix, service, region, rank)

_GITHUB_RANK = 2_000_000
_AWS_SERVICE_RANK = 1_000_000


def _load_json(data: bytes) -> object:
    return json.loads(data.decode("utf-8-sig"))


def _parse_aws(data: bytes) -> tuple[list[_Row], str | None]:
    doc = _load_json(data)
    raw = [(p["ip_prefix"], p.get("service"), p.get("region")) for p in doc["prefixes"]]
    raw += [(p["ipv6_prefix"], p.get("service"), p.get("region")) for p in doc.get("ipv6_prefixes", [])]
    counts = Counter(service for _prefix, service, _region in raw)
    rows = [(prefix, service, region,
             0 if service in (None, "AMAZON") else _AWS_SERVICE_RANK - min(counts[service], _AWS_SERVICE_RANK - 1))
            for prefix, service, region in raw]
    published = None
    stamp = doc.get("createDate")
    if isinstance(stamp, str):
        match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})-(\d{2})-(\d{2})-(\d{2})", stamp)
        published = f"{match[1]}T{match[2]}:{match[3]}:{match[4]}Z" if match else stamp
    return rows, published


def _parse_github(data: bytes) -> tuple[list[_Row], str | None]:
    doc = _load_json(data)
    prefixes = list(doc["actions"]) + list(doc.get("actions_macos", []))
    return [(prefix, None, None, _GITHUB_RANK) for prefix in prefixes], None


def _parse_azure(data: bytes) -> tuple[list[_Row], str | None]:
    doc = _load_json(data)
    rows: list[_Row] = []
    for value in doc["values"]:
        name = value.get("name", "")
        if not name.startswith("AzureCloud."):
            continue
        props = value.get("properties", {})
        region = props.get("region") or name.split(".", 1)[1]
        rows += [(prefix, None, region, 0) for prefix in props.get("addressPrefixes", [])]
    change = doc.get("changeNumber")
    return rows, (f"changeNumber {change}" if change is not None else None)


def _parse_gcp(data: bytes) -> tuple[list[_Row], str | None]:
    doc = _load_json(data)
    rows = [(p.get("ipv4Prefix") or p["ipv6Prefix"], None, p.get("scope"), 0) for p in doc["prefixes"]]
    return rows, doc.get("creationTime")


def _parse_oracle(data: bytes) -> tuple[list[_Row], str | None]:
    doc = _load_json(data)
    rows = [(cidr["cidr"], (cidr.get("tags") or [None])[-1], region["region"], 0)
            for region in doc["regions"] for cidr in region["cidrs"]]
    return rows, doc.get("last_updated_timestamp")


def _text_lines(data: bytes) -> list[str]:
    text = data.decode("utf-8-sig")
    if text.lstrip()[:1] in ("<", "{"):
        raise ValueError("not a list of prefixes (looks like HTML or JSON)")
    return text.splitlines()


def _parse_prefix_list(data: bytes) -> tuple[list[_Row], str | None]:
    """One prefix a line (Cloudflare), or an RFC 8805 geofeed whose first column is the prefix
    (DigitalOcean, Linode); '#' starts a comment."""
    rows: list[_Row] = []
    published = None
    for line in _text_lines(data):
        line = line.strip()
        if line.startswith("#"):
            match = re.match(r"#\s*Last modified:\s*(.+)", line, re.IGNORECASE)
            if match:
                published = match[1].strip()
            continue
        if line:
            rows.append((line.split(",", 1)[0].strip(), None, None, 0))
    return rows, published


_PARSERS = {
    "aws": _parse_aws, "github": _parse_github, "azure": _parse_azure, "gcp": _parse_gcp,
    "oracle": _parse_oracle, "cloudflare-v4": _parse_prefix_list, "cloudflare-v6": _parse_prefix_list,
    "digitalocean": _parse_prefix_list, "linode": _parse_prefix_list,
}

# (version, start, prefix length, (source, provider, service, region, rank))
_Entry = tuple[int, int, int, tuple]


def parse_source(source: str, data: bytes) -> tuple[list[_Entry], str | None]:
    """A published file -> (prefixes as entries, the provider's date or version stamp). Prefixes that
    do not parse are skipped; ValueError if the file is not what the source publishes or holds no
    usable prefix."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r} (known: {', '.join(SOURCES)})")
    try:
        rows, published = _PARSERS[source](data)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"{source}: unexpected structure ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        raise ValueError(f"{source}: not the published format ({exc})") from None
    provider = SOURCES[source].provider
    entries: set[_Entry] = set()
    for prefix, service, region, rank in rows:
        try:
            net = ipaddress.ip_network(str(prefix).strip(), strict=False)
        except ValueError:
            continue
        entries.add((net.version, int(net.network_address), net.prefixlen,
                     (source, provider, service or None, region or None, rank)))
    if not entries:
        raise ValueError(f"{source}: no IP prefix found")
    return sorted(entries, key=_entry_key), (str(published) if published is not None else None)


def _entry_key(entry: _Entry) -> tuple:
    version, start, plen, (source, provider, service, region, rank) = entry
    return version, start, plen, source, provider, service or "", region or "", rank


# ----------------------------------------------------------------------------------------------
# Building and reading snapshots

def _today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def _decode(blob: bytes) -> tuple[dict, list[_Entry]]:
    """A snapshot -> (its header: format, version, date, sources; its entries). ValueError if it is not one."""
    try:
        doc = json.loads(gzip.decompress(blob).decode("utf-8"))
        if doc.get("format") != FORMAT or doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} snapshot")
        labels = [tuple(label) for label in doc["labels"]]
        entries: list[_Entry] = []
        for version, key in ((4, "v4"), (6, "v6")):
            column = doc[key]
            start = 0
            for delta, plen, label in zip(column["start"], column["plen"], column["label"], strict=True):
                start += delta
                entries.append((version, start, plen, labels[label]))
        header = {k: doc[k] for k in ("format", "version", "date", "sources")}
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"not a readable {FORMAT} snapshot ({type(exc).__name__}: {exc})") from None
    return header, entries


def _encode(sources: dict, entries: Iterable[_Entry]) -> bytes:
    entries = sorted(set(entries), key=_entry_key)
    labels = sorted({entry[3] for entry in entries}, key=lambda l: (l[0], l[1], l[2] or "", l[3] or "", l[4]))
    index = {label: i for i, label in enumerate(labels)}
    doc: dict = {"format": FORMAT, "version": FORMAT_VERSION,
                 "date": max((meta.get("retrieved") or "" for meta in sources.values()), default="") or None,
                 "sources": sources, "labels": [list(label) for label in labels]}
    for version, key in ((4, "v4"), (6, "v6")):
        starts, plens, label_ids, previous = [], [], [], 0
        for v, start, plen, label in entries:
            if v != version:
                continue
            starts.append(start - previous)
            previous = start
            plens.append(plen)
            label_ids.append(index[label])
        doc[key] = {"start": starts, "plen": plens, "label": label_ids}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return gzip.compress(raw, compresslevel=9, mtime=0)


def build_snapshot(files: Mapping[str, bytes], *, previous: bytes | None = None, retrieved: str | None = None,
                   urls: Mapping[str, str] | None = None, via: str | None = None) -> bytes:
    """Published files, keyed by source name (see SOURCES), -> a compact snapshot (bytes).

    previous: an older snapshot whose sources missing from ``files`` are carried over unchanged (so a
    provider that could not be fetched keeps its data). retrieved: the day the files were fetched
    (default today, UTC). urls: where each file came from when not the official URL. via: the mirror
    the files were copied from, recorded in the header. ValueError if a file cannot be read."""
    retrieved = retrieved or _today()
    sources: dict[str, dict] = {}
    entries: list[_Entry] = []
    for source in sorted(files):
        parsed, published = parse_source(source, files[source])
        entries += parsed
        meta = {"provider": SOURCES[source].provider, "url": (urls or {}).get(source, SOURCES[source].url),
                "retrieved": retrieved, "published": published, "prefixes": len(parsed)}
        if via:
            meta["via"] = via
        sources[source] = meta
    if previous is not None:
        old_header, old_entries = _decode(previous)
        for source, meta in old_header["sources"].items():
            if source not in sources:
                sources[source] = meta
                entries += [entry for entry in old_entries if entry[3][0] == source]
    return _encode(sources, entries)


class _Table(NamedTuple):
    starts: list[int]
    ends: list[int]
    owners: list[NetOwner]


def _flatten(entries: list[_Entry], bits: int, owner_of: dict[tuple, NetOwner]) -> _Table:
    """Nested or disjoint prefixes -> disjoint sorted intervals, each owned by the most specific prefix
    covering it (ties between identical prefixes by rank), adjacent intervals of one owner merged."""
    intervals: list[list] = []  # [start, end, label]
    for _version, start, plen, label in sorted(entries, key=_entry_key):
        if intervals and intervals[-1][0] == start and intervals[-1][1] == start + (1 << (bits - plen)) - 1:
            if label[4] > intervals[-1][2][4]:  # equal prefix: the higher rank wins, else the first
                intervals[-1][2] = label
            continue
        intervals.append([start, start + (1 << (bits - plen)) - 1, label])

    starts: list[int] = []
    ends: list[int] = []
    owners: list[NetOwner] = []

    def emit(first: int, last: int, label: tuple) -> None:
        if first > last:
            return
        owner = owner_of[label]
        if owners and owners[-1] is owner and ends[-1] + 1 == first:
            ends[-1] = last
        else:
            starts.append(first)
            ends.append(last)
            owners.append(owner)

    stack: list[tuple[int, tuple]] = []  # open prefixes, outermost first: (end, label)
    cursor = 0
    for start, end, label in intervals:
        while stack and stack[-1][0] < start:
            top_end, top_label = stack.pop()
            emit(cursor, top_end, top_label)
            cursor = top_end + 1
        if stack:
            emit(cursor, start - 1, stack[-1][1])
        cursor = start
        stack.append((end, label))
    while stack:
        top_end, top_label = stack.pop()
        emit(cursor, top_end, top_label)
        cursor = top_end + 1
    return _Table(starts, ends, owners)


def _address(ip: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(ip, str):
        return None
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr


class Snapshot:
    """A loaded snapshot: ``find(ip)`` and ``info()``."""

    def __init__(self, blob: bytes, path: str, origin: str, warning: str | None = None):
        header, entries = _decode(blob)
        self.blob = blob
        self.path = path
        self.origin = origin
        self.warning = warning
        self.date: str | None = header["date"]
        self.sources: dict[str, dict] = header["sources"]
        owner_of: dict[tuple, NetOwner] = {}
        interned: dict[NetOwner, NetOwner] = {}
        for label in {entry[3] for entry in entries}:
            owner = NetOwner(label[1], label[2], label[3])
            owner_of[label] = interned.setdefault(owner, owner)
        self.counts = Counter(entry[3][1] for entry in entries)
        self.prefixes = Counter(f"ipv{entry[0]}" for entry in entries)
        self._v4 = _flatten([e for e in entries if e[0] == 4], 32, owner_of)
        self._v6 = _flatten([e for e in entries if e[0] == 6], 128, owner_of)

    def find(self, ip: str) -> NetOwner | None:
        addr = _address(ip)
        if addr is None:
            return None
        table = self._v4 if addr.version == 4 else self._v6
        number = int(addr)
        i = bisect_right(table.starts, number) - 1
        if i < 0 or number > table.ends[i] or not addr.is_global:
            return None
        return table.owners[i]

    def info(self) -> dict:
        info = {"path": self.path, "origin": self.origin, "date": self.date,
                "providers": dict(sorted(self.counts.items())),
                "prefixes": {"ipv4": self.prefixes.get("ipv4", 0), "ipv6": self.prefixes.get("ipv6", 0)},
                "intervals": len(self._v4.starts) + len(self._v6.starts),
                "sources": self.sources}
        if self.warning:
            info["warning"] = self.warning
        return info


def user_snapshot_path(home: str | os.PathLike | None = None) -> Path:
    """Where ``nhiwatch ranges update`` keeps the user's snapshot: in the nhiwatch home (--home, else
    $NHIWATCH_HOME, else ./.nhiwatch)."""
    from nhiwatch.store.db import resolve_home

    return resolve_home(home) / SNAPSHOT_NAME


def shipped_snapshot() -> bytes:
    return resources.files("nhiwatch.knowledge").joinpath("data", SNAPSHOT_NAME).read_bytes()


def load_snapshot(home: str | os.PathLike | None = None) -> Snapshot:
    """The user's snapshot in ``home`` when there is a readable one, else the one shipped with nhiwatch."""
    path = user_snapshot_path(home)
    warning = None
    if path.is_file():
        try:
            return Snapshot(path.read_bytes(), str(path), "user")
        except (OSError, ValueError) as exc:
            warning = f"ignored unreadable user snapshot {path}: {exc}"
    shipped = resources.files("nhiwatch.knowledge").joinpath("data", SNAPSHOT_NAME)
    return Snapshot(shipped.read_bytes(), str(shipped), "shipped", warning)


def save_user_snapshot(blob: bytes, home: str | os.PathLike | None = None) -> Path:
    """Write a snapshot (checked first) as the user's, atomically; later lookups in this process use it."""
    _decode(blob)
    path = user_snapshot_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)
    reload()
    return path


_lock = threading.Lock()
_default: Snapshot | None = None


def _default_snapshot() -> Snapshot:
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = load_snapshot()
    return _default


def reload() -> None:
    """Forget the loaded snapshot (the next lookup reads the user's or the shipped one again)."""
    global _default
    with _lock:
        _default = None
        lookup.cache_clear()


@functools.lru_cache(maxsize=1 << 16)
def lookup(ip: str) -> NetOwner | None:
    """Whose published range holds this IPv4 or IPv6 address (the most specific prefix wins); None for
    an address in no published range, a non-global address (private, loopback, documentation, ...) or
    a string that is not an IP address."""
    return _default_snapshot().find(ip)


def snapshot_info(home: str | os.PathLike | None = None) -> dict:
    """Which snapshot is in use (path, origin "user" or "shipped"), its date, prefixes per provider and
    each source's URL and dates. With ``home``, the snapshot that home would use."""
    return (load_snapshot(home) if home is not None else _default_snapshot()).info()


# ----------------------------------------------------------------------------------------------
# Fetching (only for `nhiwatch ranges update`, which the user runs)

_AZURE_LINK = re.compile(r"""[^"'\s<>]*ServiceTags_Public[^"'\s<>]*\.json""")


def fetch(source: str, url: str | None = None, *, timeout: float = 60.0) -> bytes:
    """Download one source's published file (from ``url`` if given, else the official URL). For Azure,
    a download page is followed to the ServiceTags_Public JSON it links. Raises OSError (URLError,
    HTTPError, timeout) or ValueError."""
    import urllib.parse
    import urllib.request

    from nhiwatch import __version__

    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    url = url or SOURCES[source].url

    def get(address: str) -> bytes:
        request = urllib.request.Request(address, headers={"User-Agent": f"nhiwatch/{__version__}",
                                                           "Accept": "*/*"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    data = get(url)
    if source == "azure" and data.lstrip()[:1] != b"{":
        match = _AZURE_LINK.search(data.decode("utf-8", "replace"))
        if match is None:
            raise ValueError(f"no ServiceTags_Public JSON linked from {url}")
        data = get(urllib.parse.urljoin(url, match[0]))
    return data
