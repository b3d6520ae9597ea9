"""The detection engine. Its core is a pure step:

    step(profile, events of one identity in time order, context) -> findings   (the profile is updated)

Each event is judged against the profile learned from everything before it, then folded into it.
The same step serves a batch of history and a live stream, and runs unchanged on Spark partitions
(one identity per group). I/O, peer groups and the store live outside it (see runner.py).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from nhiwatch.core.finding import Finding, finding_id
from nhiwatch.core.severity import ALERT, SEVERITIES, Severity, severity_rank
from nhiwatch.core.times import iso_from_us
from nhiwatch.detect.actor import Actor, actor_of
from nhiwatch.detect.detectors import DETECTORS
from nhiwatch.detect.detectors.base import Detector, Hit, IdentityInfo, Look
from nhiwatch.detect.features import DENIED, account_of, agent_family, github_owner, is_read, network_of
from nhiwatch.detect.profile import HOUR, Ev, Profile
from nhiwatch.detect.routes import WALK_APIS, PrincipalIndex, canonical_api, habit_key, targets_of

MERGE_US = 3600 * 1_000_000          # hits of one detector and key closer than this are one finding
MAX_EVENT_IDS = 500                  # a finding lists at most this many events (the count is kept)
TRIGGER_TEXT = 256                   # longest text a finding keeps from its triggering event (attacker-written)
RESOURCE_APIS = re.compile(r"^(secretsmanager:|ssm:GetParameter|s3:GetObject|s3:PutObject|ec2:GetPasswordData)")
CHANGE_WINDOW_US = 24 * HOUR         # a deploy explains new calls of its workload for a day
KEY_TEST_US = 24 * HOUR              # a key's maker may try it out for a day from where it made it
# Ranks on core.severity's scale, for the arithmetic on a hit's severity.
INFO, LOW, MEDIUM, HIGH = (s.rank for s in (Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH))


class KeyOrigin(NamedTuple):
    """Where an access key was made: by whom, when, from which network, with which client."""
    creator: str
    t: int
    net: str
    wide_net: str
    agent: str


@dataclass
class Context:
    """What the step may know beyond the identity: its inventory facts, its peers, the org's accounts."""
    info: IdentityInfo
    peers: Profile | None = None
    known_accounts: frozenset[str] = frozenset()
    learn_until_us: int = 0          # events before this only teach
    detectors: tuple[Detector, ...] = DETECTORS
    routine_detectors: tuple[Detector, ...] = field(init=False)
    # Deploys of the identity's workload (function code or configuration, task definition, stack,
    # launch template, trust): (time, event id, what), in time order.
    changes: tuple[tuple[int, str, str], ...] = ()
    key_origins: dict[str, KeyOrigin] = field(default_factory=dict)  # AKIA key -> who made it, from where
    principals: PrincipalIndex = field(default_factory=PrincipalIndex)  # the inventory's, for escalation routes

    def __post_init__(self) -> None:
        self.routine_detectors = tuple(d for d in self.detectors if d.routine)
        self._change_times = [c[0] for c in self.changes]

    def change_at(self, t: int) -> tuple[int, str, str] | None:
        """The latest deploy at or before t, if it was less than a day before."""
        index = bisect.bisect_right(self._change_times, t) - 1
        if index >= 0 and t - self.changes[index][0] < CHANGE_WINDOW_US:
            return self.changes[index]
        return None


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
    severity: str = Severity.INFO.value
    strength: float = 0.0
    trigger: Ev | None = None        # the event whose hit gave the finding its severity and explanation


def _final_severity(detector: Detector, hit: Hit, look: Look) -> tuple[str, Hit]:
    """The hit's severity once who acted, the identity and a deploy are taken into account."""
    info = look.info
    rank = severity_rank(hit.severity)
    if detector.behavioural and info.human:
        rank = INFO  # people vary by nature; nhiwatch watches workloads (their steps still count in sequences)
    if look.actor == Actor.SERVICE and not detector.judges_service_calls:
        rank = min(rank, LOW)  # an AWS service acting with the identity is not someone else holding it
    if look.key_test and detector.behavioural:
        rank = INFO  # the key's maker trying it out from where it made it (a rotation's check): nothing to read
    if info.prior and detector.tactic == "discovery" and is_read(look.ev.name):
        rank = min(rank, LOW)  # AWS's service roles and known vendors' scanners sweep read-only APIs by design
    if look.change and detector.change_aware and look.usual_context and rank > INFO:
        when, event_id, what = look.change
        rank = INFO
        hit = replace(hit, explanation=f"{hit.explanation} Expected change: it follows {what} at {iso_from_us(when)} "
                                       f"(event {event_id}), from its usual network and client.",
                      evidence=dict(hit.evidence, expected_change={"event_id": event_id, "what": what,
                                                                   "at": iso_from_us(when)}))
    if rank == MEDIUM and info.risk_level in ("high", "critical"):
        rank = HIGH  # the same anomaly matters more on an identity that can do more
    return SEVERITIES[rank], hit


def _close(item: _Open, info: IdentityInfo) -> Finding:
    detector = item.detector
    score = round(100 * item.strength * (0.6 + 0.4 * info.risk_score / 100))
    evidence = dict(item.hit.evidence, events=item.events)
    if item.trigger is not None:
        evidence["trigger"] = trigger_facts(item.trigger)
    return Finding(
        id=finding_id(detector.id, info.arn, item.first_uid), detector=detector.id, title=detector.title,
        severity=item.severity, score=max(0, min(100, score)),
        identity={"arn": info.arn, "type": info.kind, "account_id": info.account_id}, session=item.session,
        first_seen=iso_from_us(item.first_t), last_seen=iso_from_us(item.last_t), event_ids=item.event_ids,
        mitre=sorted(set(detector.mitre) | set(item.hit.mitre)),
        stratus=sorted(set(item.hit.stratus) or set(detector.stratus)), explanation=item.hit.explanation,
        evidence=evidence, tactic=item.hit.tactic or detector.tactic)


def trigger_facts(ev: Ev) -> dict:
    """What a finding keeps of the event that triggered it: who called what, from where, with which
    credentials, so outputs can name the actor, the API and the source (OCSF) without the store.
    Only facts the engine already holds; every text is cut short, since the caller wrote it."""
    facts: dict = {"event_id": ev.event_id, "time": iso_from_us(ev.t), "api": ev.api, "region": ev.region,
                   "source_ip": ev.ip, "source_ip_kind": ev.ip_kind, "vpc_endpoint_id": ev.vpce,
                   "user_agent": ev.agent, "access_key_id": ev.key, "session": ev.session,
                   "invoked_by": ev.invoked_by, "error_code": ev.error, "resource": ev.resource}
    if ev.inbound:  # someone else's call assuming this role: the caller acted
        facts |= {"caller": ev.caller, "caller_type": ev.caller_type, "assumed_role": ev.assumed_role,
                  "subject": ev.subject}
    return {key: value[:TRIGGER_TEXT] if isinstance(value, str) else value
            for key, value in facts.items() if value is not None}


def learn(profile: Profile, ev: Ev, net: str, wide_net: str, agent: str, actor: Actor = Actor.TOOL,
          facets: bool = True) -> None:
    """Fold one event into the profile. Calls an AWS service made with the identity teach only which
    APIs services call for it; events behind an open finding (`facets=False`) teach nothing about
    the identity's normal, only the short window that windowed detectors count."""
    if ev.inbound:
        if facets:
            profile.observe("assumer", ev.caller, ev.t)
            if ev.subject:
                profile.observe("subject", ev.subject, ev.t)
                profile.observe("subject_owner", github_owner(ev.subject), ev.t)
        return
    denied = ev.error in DENIED
    if not facets:
        profile.push_window(ev.t, ev.api, denied, is_read(ev.name), ev.resource or "")
        return
    profile.touch(ev.t)
    if actor is Actor.SERVICE:
        profile.observe("service_api", ev.api, ev.t)
        return
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
    if ev.error:
        profile.errors += 1
        profile.denied += denied
    if ev.session:
        profile.remember_session(ev.session, net)
    profile.push_window(ev.t, ev.api, denied, is_read(ev.name), ev.resource or "")


def step(profile: Profile, events: list[Ev], ctx: Context, carry: dict | None = None) -> list[Finding]:
    """Judge then learn each event of one identity, in time order; returns the findings raised.

    An event that raises a medium+ finding, and every later event from the same network and client
    while that finding is open, is judged but never learned: the attacker's network, client and
    resources do not become the identity's normal (resolving the finding as benign teaches them).

    With `carry`, findings still open at the end stay in it (for the next chunk of the same identity)
    instead of being closed; `close_all(carry, ctx)` closes them."""
    info = ctx.info
    open_items: dict[tuple[str, str], _Open] = carry if carry is not None else {}
    findings: list[Finding] = []
    for ev in events:
        if ev.t > profile.judged:
            profile.judged = ev.t
        net, wide_net = network_of(ev.ip, ev.ip_kind, ev.vpce)
        agent = agent_family(ev.agent)
        actor = Actor.TOOL if ev.inbound else actor_of(ev, agent)
        context = f"{net}|{agent}"
        held = not ev.inbound and context in profile.held
        raised: list[str] = []  # detectors that alerted (medium+) on this event
        if ev.t >= ctx.learn_until_us:
            look = Look(ev, profile, info, net, wide_net, agent, ctx.peers, known_accounts=ctx.known_accounts,
                        actor=actor, change=ctx.change_at(ev.t), principals=ctx.principals)
            origin = ctx.key_origins.get(ev.key) if ev.key and ev.key.startswith("AKIA") else None
            look.key_test = (origin is not None and 0 <= ev.t - origin.t < KEY_TEST_US and origin.net == net
                             and origin.agent == agent and origin.creator != ev.identity)
            detectors = ctx.detectors
            if not ev.inbound:
                if actor is Actor.SERVICE:
                    look.new = {"api": look.is_new("service_api", ev.api), "net": False, "wide_net": False,
                                "agent": False, "region": False}
                else:
                    look.new = {"api": look.is_new("api", ev.api), "net": look.is_new("net", net),
                                "wide_net": look.is_new("wide_net", wide_net), "agent": look.is_new("agent", agent),
                                "region": look.is_new("region", ev.region)}
                if not ev.error and not any(look.new.values()):
                    detectors = ctx.routine_detectors
                if ev.error in DENIED and actor is not Actor.SERVICE:
                    _note_denied(profile, ev)
            for detector in detectors:
                for hit in detector.check(look):
                    severity, hit = _final_severity(detector, hit, look)
                    if held and severity_rank(severity) >= ALERT.rank and detector.id in profile.held[context][2]:
                        # This detector already alerted on this context and that finding is open: later
                        # hits are its continuation, worth seeing but not a new page.
                        severity = Severity.LOW.value
                    rank = severity_rank(severity)
                    if (rank >= LOW or hit.evidence.get("cold_start")) and not detector.summarises_steps \
                            and actor is not Actor.SERVICE:
                        profile.push_step(ev.t, hit.tactic or detector.tactic, detector.id,
                                          detector.hostile or bool(hit.evidence.get("hostile")))
                    if rank == INFO and "expected_change" not in hit.evidence:
                        continue  # context for sequences, not a finding: nobody needs to read it
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
                    if item.trigger is None or severity_rank(severity) > severity_rank(item.severity):
                        item.severity, item.hit, item.trigger = severity, hit, ev
                    item.strength = max(item.strength, hit.strength)
                    if rank >= ALERT.rank and actor is not Actor.SERVICE:
                        raised.append(detector.id)
        if raised or held:
            profile.hold(context, ev.t, raised)
        learn(profile, ev, net, wide_net, agent, actor, facets=not (raised or held))
        if not (raised or held or ev.inbound or ev.error) and actor is not Actor.SERVICE and ctx.principals \
                and canonical_api(ev.api) in WALK_APIS:
            remember_walks(profile, ev, ctx)
    if carry is None:
        findings += close_all(open_items, ctx)
    return sorted(findings, key=lambda f: (f.first_seen, f.id))


def remember_walks(profile: Profile, ev: Ev, ctx: Context) -> None:
    """A call on a principal that raised nothing becomes the identity's habit (key rotation, a deploy handing
    the same role again): the escalation-route detector does not raise it twice."""
    api = canonical_api(ev.api)
    for target in targets_of(api, ev.params, ev.assumed_role, ctx.info.arn, ev.account or ctx.info.account_id,
                             ctx.principals):
        profile.observe("walked", habit_key(api, target), ev.t)


def _note_denied(profile: Profile, ev: Ev) -> None:
    """Denied calls on several APIs in a few minutes are a probing step, from a cold start too."""
    denied = {w[1] for w in profile.window if w[2] and w[0] >= ev.t - 15 * 60 * 1_000_000} | {ev.api}
    if len(denied) >= 3 and not any(s[2] == "denied" and s[0] >= ev.t - HOUR for s in profile.steps):
        profile.push_step(ev.t, "discovery", "denied", True)


def close_all(open_items: dict, ctx: Context) -> list[Finding]:
    findings = [_close(item, ctx.info) for item in open_items.values()]
    open_items.clear()
    return findings


def learn_values(profile: Profile, t: int, api: str, ip: str | None, ip_kind: str | None, user_agent: str | None,
                 region: str | None, subject: str | None, assumed_role: str | None, vpce: str | None = None) -> None:
    """Teach a profile the facets of an event judged benign, without counting it as activity, and
    release the context it was held in."""
    net, wide_net = network_of(ip, ip_kind, vpce)
    agent = agent_family(user_agent)
    profile.held.pop(f"{net}|{agent}", None)
    for facet, value in (("api", api), ("net", net), ("wide_net", wide_net), ("agent", agent),
                         ("region", region), ("subject", subject), ("subject_owner", github_owner(subject))):
        if value is not None:
            profile.observe(facet, value, t)
    profile.observe("target_account", account_of(assumed_role), t)
