"""The detection engine. Its core is a pure step:

    step(profile, events of one identity in time order, context) -> findings   (the profile is updated)

Each event is judged against the profile learned from everything before it, then folded into it.
The same step serves a batch of history and a live stream, and runs unchanged on Spark partitions
(one identity per group). I/O, peer groups and the store live outside it (see runner.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from nhiwatch.detect.detectors import DETECTORS
from nhiwatch.detect.detectors.base import Detector, Hit, IdentityInfo, Look
from nhiwatch.detect.detectors.sensitive import DENIED
from nhiwatch.detect.features import account_of, agent_family, github_owner, is_read, network_of
from nhiwatch.detect.finding import SEVERITIES, Finding, finding_id, severity_rank
from nhiwatch.detect.profile import Ev, Profile

MERGE_US = 3600 * 1_000_000          # hits of one detector and key closer than this are one finding
MAX_EVENT_IDS = 500                  # a finding lists at most this many events (the count is kept)
RESOURCE_APIS = re.compile(r"^(secretsmanager:|ssm:GetParameter|s3:GetObject|s3:PutObject|ec2:GetPasswordData)")


@dataclass
class Context:
    """What the step may know beyond the identity: its inventory facts, its peers, the org's accounts."""
    info: IdentityInfo
    peers: Profile | None = None
    known_accounts: frozenset[str] = frozenset()
    learn_until_us: int = 0          # events before this only teach
    detectors: tuple[Detector, ...] = DETECTORS
    routine_detectors: tuple[Detector, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.routine_detectors = tuple(d for d in self.detectors if d.routine)


@dataclass
class _Open:
    detector: Detector
    hit: Hit
    first_t: int
    last_t: int
    first_uid: str
    session: str | None
    event_ids: list[str] = field(default_factory=list)
    events: int = 0
    severity: str = "info"
    strength: float = 0.0


def iso_us(us: int) -> str:
    """Microseconds since the epoch as ISO-8601 UTC to the second (the finding contract's times)."""
    return datetime.fromtimestamp(us / 1e6, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _final_severity(detector: Detector, base: str, info: IdentityInfo) -> str:
    rank = severity_rank(base)
    if detector.behavioural and info.human:
        rank = min(rank, 1)  # people vary by nature; nhiwatch watches workloads
    if rank == 2 and info.risk_level in ("high", "critical"):
        rank = 3  # the same anomaly matters more on an identity that can do more
    return SEVERITIES[rank]


def _close(item: _Open, info: IdentityInfo) -> Finding:
    detector = item.detector
    score = round(100 * item.strength * (0.6 + 0.4 * info.risk_score / 100))
    evidence = dict(item.hit.evidence, events=item.events)
    return Finding(
        id=finding_id(detector.id, info.arn, item.first_uid), detector=detector.id, title=detector.title,
        severity=item.severity, score=max(0, min(100, score)),
        identity={"arn": info.arn, "type": info.kind, "account_id": info.account_id}, session=item.session,
        first_seen=iso_us(item.first_t), last_seen=iso_us(item.last_t), event_ids=item.event_ids,
        mitre=sorted(set(detector.mitre) | set(item.hit.mitre)),
        stratus=sorted(set(item.hit.stratus) or set(detector.stratus)), explanation=item.hit.explanation,
        evidence=evidence, tactic=detector.tactic)


def learn(profile: Profile, ev: Ev, net: str, wide_net: str, agent: str) -> None:
    """Fold one event into the profile."""
    if ev.inbound:
        profile.observe("assumer", ev.caller, ev.t)
        if ev.subject:
            profile.observe("subject", ev.subject, ev.t)
            profile.observe("subject_owner", github_owner(ev.subject), ev.t)
        return
    profile.touch(ev.t)
    if profile.observe("api", ev.api, ev.t):
        profile.note_novel_api(ev.t)
    profile.observe("net", net, ev.t)
    profile.observe("wide_net", wide_net, ev.t)
    profile.observe("agent", agent, ev.t)
    profile.observe("region", ev.region, ev.t)
    if ev.assumed_role and not ev.error:
        profile.observe("target_role", ev.assumed_role, ev.t)
        profile.observe("target_account", account_of(ev.assumed_role), ev.t)
    if ev.resource and RESOURCE_APIS.match(ev.api):
        profile.observe("resource", ev.resource, ev.t)
    denied = ev.error in DENIED
    if ev.error:
        profile.errors += 1
        profile.denied += denied
    if ev.session:
        profile.remember_session(ev.session, net)
    profile.push_window(ev.t, ev.api, denied, is_read(ev.name), ev.resource or "")


def step(profile: Profile, events: list[Ev], ctx: Context, carry: dict | None = None) -> list[Finding]:
    """Judge then learn each event of one identity, in time order; returns the findings raised.

    With `carry`, findings still open at the end stay in it (for the next chunk of the same identity)
    instead of being closed; `close_all(carry, ctx)` closes them."""
    info = ctx.info
    open_items: dict[tuple[str, str], _Open] = carry if carry is not None else {}
    findings: list[Finding] = []
    for ev in events:
        net, wide_net = network_of(ev.ip, ev.ip_kind, ev.vpce)
        agent = agent_family(ev.agent)
        if ev.t >= ctx.learn_until_us:
            look = Look(ev, profile, info, net, wide_net, agent, ctx.peers, known_accounts=ctx.known_accounts)
            detectors = ctx.detectors
            if not ev.inbound:
                look.new = {"api": look.is_new("api", ev.api), "net": look.is_new("net", net),
                            "wide_net": look.is_new("wide_net", wide_net), "agent": look.is_new("agent", agent),
                            "region": look.is_new("region", ev.region)}
                if not ev.error and not any(look.new.values()):
                    detectors = ctx.routine_detectors
            for detector in detectors:
                for hit in detector.check(look):
                    key = (detector.id, hit.key)
                    item = open_items.get(key)
                    if item is not None and ev.t - item.last_t > MERGE_US:
                        findings.append(_close(open_items.pop(key), info))
                        item = None
                    if item is None:
                        item = open_items[key] = _Open(detector, hit, ev.t, ev.t, ev.uid, ev.session)
                    item.last_t = ev.t
                    item.events += 1
                    if len(item.event_ids) < MAX_EVENT_IDS and ev.event_id not in item.event_ids:
                        item.event_ids.append(ev.event_id)
                    severity = _final_severity(detector, hit.severity, info)
                    if severity_rank(severity) > severity_rank(item.severity):
                        item.severity, item.hit = severity, hit
                    item.strength = max(item.strength, hit.strength)
        learn(profile, ev, net, wide_net, agent)
    if carry is None:
        findings += close_all(open_items, ctx)
    return sorted(findings, key=lambda f: (f.first_seen, f.id))


def close_all(open_items: dict, ctx: Context) -> list[Finding]:
    findings = [_close(item, ctx.info) for item in open_items.values()]
    open_items.clear()
    return findings


def learn_values(profile: Profile, t: int, api: str, ip: str | None, ip_kind: str | None, user_agent: str | None,
                 region: str | None, subject: str | None, assumed_role: str | None) -> None:
    """Teach a profile the facets of an event judged benign, without counting it as activity."""
    net, wide_net = network_of(ip, ip_kind)
    for facet, value in (("api", api), ("net", net), ("wide_net", wide_net), ("agent", agent_family(user_agent)),
                         ("region", region), ("subject", subject), ("subject_owner", github_owner(subject))):
        if value is not None:
            profile.observe(facet, value, t)
    profile.observe("target_account", account_of(assumed_role), t)
