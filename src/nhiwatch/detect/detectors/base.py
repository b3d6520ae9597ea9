"""What every detector is: a small class with its metadata and one `check` that looks at an event
against the identity's baseline *before* the event is learned."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timezone
from typing import ClassVar, Iterable, Sequence

from nhiwatch.detect.cases import Case
from nhiwatch.detect.catalog import TACTIC_ORDER
from nhiwatch.detect.profile import Ev, Profile
from nhiwatch.detect.routes import compile_walks

HOUR_US = 3_600_000_000
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class IdentityInfo:
    """What the inventory (or, without one, the events) says about an identity."""
    arn: str
    kind: str = "unknown"          # NHI type from the inventory, or the principal type
    category: str = "unknown"      # non-human, human, human-use-of-nhi, unknown
    risk_score: int = 0
    risk_level: str = "low"
    account_id: str | None = None
    peer_key: str | None = None
    services: tuple[str, ...] = ()  # AWS services its trust policy lets assume it (lambda.amazonaws.com ...)
    vendor: str | None = None       # the known third party its trust policy or its assumers name
    admin: bool = False             # the inventory found it admin
    routes: tuple[dict, ...] = ()   # its routes to admin from the principal graph (compact: methods, hops, admin)
    instance_profiles: tuple[str, ...] = ()

    @cached_property
    def walks(self) -> tuple:
        """Its routes as the hops it makes itself (detect/routes.py), compiled once."""
        return compile_walks(self.arn, self.routes) if self.routes else ()

    @property
    def human(self) -> bool:
        return self.category == "human"

    @property
    def prior(self) -> str | None:
        """Whose behaviour an identity starts from before it has its own: AWS's own service roles and
        known vendors' roles sweep read-only APIs from their first night; nobody else is assumed to."""
        if self.kind == "service-linked-role" or "/aws-service-role/" in self.arn:
            return "aws-service"
        if self.vendor:
            return f"vendor:{self.vendor}"
        return None

    @property
    def workload_runtime(self) -> str | None:
        """The compute service whose code uses this role's credentials, from its trust policy."""
        for service in self.services:
            if service in WORKLOAD_SERVICES:
                return WORKLOAD_SERVICES[service]
        return None


# Services that run a customer's code with a role: calls made with the role from anywhere else are
# someone else's. (Trust-policy principal -> the runtime the SDK reports in exec-env.)
WORKLOAD_SERVICES = {"lambda.amazonaws.com": "AWS_Lambda", "ecs-tasks.amazonaws.com": "AWS_ECS",
                     "ec2.amazonaws.com": "EC2", "codebuild.amazonaws.com": "AWS_CodeBuild",
                     "glue.amazonaws.com": "AWS_Glue", "sagemaker.amazonaws.com": "AWS_SageMaker"}


RECENT_US = 3600 * 1_000_000   # a context first used this recently is still on probation
DAY_US = 24 * 3600 * 1_000_000


@dataclass(slots=True)
class Look:
    """One event in context: its facets, what is new about it, the identity and its peers."""
    ev: Ev
    profile: Profile
    info: IdentityInfo
    net: str
    wide_net: str
    agent: str
    peers: Profile | None = None
    new: dict[str, bool] = field(default_factory=dict)
    known_accounts: frozenset[str] = frozenset()   # the organisation's accounts, as far as nhiwatch knows
    actor: str = "tool"                            # who acted (detect/actor.py Actor values)
    change: tuple[int, str, str] | None = None     # a deploy of this workload in the last day: (t, event id, what)
    key_test: bool = False                         # a new access key used by its maker, from where it made it
    principals: object = None                      # the inventory's principals (detect/routes.PrincipalIndex)

    @property
    def runtime(self) -> str | None:
        """The compute runtime whose code holds this role: from its trust policy, or, without an
        inventory, from the AWS service seen assuming it (Lambda, ECS tasks ... hand the role to code)."""
        runtime = self.info.workload_runtime
        if runtime is None:
            runtime = next((WORKLOAD_SERVICES[a] for a in self.profile.facets["assumer"] if a in WORKLOAD_SERVICES),
                           None)
        return runtime

    @property
    def usual_context(self) -> bool:
        """Nothing about where or how the call was made is new: its usual network and client. A network
        or client an established identity first used within the hour is not usual yet: an intruder's
        first call (a GetCallerIdentity that alarms nobody) must not make the next ones look routine."""
        if self.new.get("net") or self.new.get("agent") or self.new.get("wide_net"):
            return False
        return self.actor == "aws-service" or not (self.recent("net", self.net) or self.recent("agent", self.agent))

    def recent(self, facet: str, value: str) -> bool:
        """Known, but first seen less than an hour ago by an identity active for more than a day."""
        entry = self.profile.facets[facet].get(value)
        return entry is not None and self.ev.t - entry[1] < RECENT_US and self.ev.t - self.profile.first > DAY_US

    def is_new(self, facet: str, value: str | None) -> bool:
        """Never seen by the identity (nor, while it is young, by its peer group)."""
        if value is None or self.profile.knows(facet, value):
            return False
        if not self.profile.mature:
            return self.peers is None or not self.peers.knows(facet, value)
        return True

    def when(self) -> str:
        moment = datetime.fromtimestamp(self.ev.t / 1e6, timezone.utc)
        return f"{DAYS[moment.weekday()]} {moment.strftime('%H:%M')} UTC"

    def normally(self) -> str:
        """The identity's normal as one sentence (or its peers' while it is young)."""
        profile = self.profile if self.profile.mature or self.peers is None else self.peers
        whose = "it" if profile is self.profile else "its peer group"
        if profile.n == 0:
            return "Normally: nothing yet, it has no history."
        apis = [a for a, _ in profile.top("api", 4)]
        nets = [n for n, _ in profile.top("net", 2)]
        regions = [r for r, _ in profile.top("region", 2)]
        agents = [a for a, _ in profile.top("agent", 2)]
        busy = max(range(168), key=lambda h: profile.hours[h])
        mostly = lambda values: f" (mostly {', '.join(values)})" if values else ""  # noqa: E731
        return (f"Normally {whose} {'calls' if whose == 'it' else 'call'} "
                f"{plural(len(profile.facets['api']), 'API')}{mostly(apis)} from "
                f"{plural(len(profile.facets['net']), 'network')}{mostly(nets)} in "
                f"{', '.join(regions) or 'no region'} with {', '.join(agents) or 'no known client'}: "
                f"{plural(profile.n, 'call')} over {plural(profile.days, 'active day')}"
                + (f", busiest {DAYS[busy // 24]} {busy % 24:02d}:00." if profile.hours[busy] else "."))

    def what(self) -> str:
        ev = self.ev
        marks = [FACET_WORDS.get(facet, facet) for facet, is_new in self.new.items() if is_new]
        return (f"at {self.when()} it called {ev.api} from {ev.ip or 'no address'} ({self.net}) with {self.agent}"
                + (f" in {ev.region}" if ev.region else "")
                + (f"; new to it: {', '.join(marks)}" if marks else ""))


FACET_WORDS = {"api": "the API", "net": "the network", "wide_net": "the wider network", "agent": "the client",
               "region": "the region"}


def plural(n: int, word: str) -> str:
    """'1 API', '2 APIs', '1,204 calls'."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


@dataclass
class Hit:
    severity: str
    strength: float                 # 0..1, the anomaly's own strength
    explanation: str
    evidence: dict = field(default_factory=dict)
    key: str = ""                   # hits of a detector with the same key close in time become one finding
    mitre: tuple[str, ...] = ()
    stratus: tuple[str, ...] = ()
    tactic: str | None = None       # when the call's tactic differs from the detector's own


class Detector:
    id: ClassVar[str]
    title: ClassVar[str]
    tactic: ClassVar[str]
    mitre: ClassVar[tuple[str, ...]]
    stratus: ClassVar[tuple[str, ...]] = ()
    guardduty: ClassVar[tuple[str, ...]] = ()   # GuardDuty finding types it stands in for
    description: ClassVar[str]
    # Behavioural detectors are softened for people: nhiwatch watches workloads, and people vary.
    behavioural: ClassVar[bool] = True
    # Whether it can fire on a routine event (nothing new about it, no error, not an assumption);
    # most detectors need something new, and skipping them on routine events is the engine's fast path.
    routine: ClassVar[bool] = False
    # A deploy of the identity's workload explains a new API made from its usual place and client:
    # such hits become info, linked to the deploy, for detectors that judge novelty.
    change_aware: ClassVar[bool] = False
    # Calls made by an AWS service with the identity are capped at low, except for detectors that judge
    # what the call does (a stack granting admin is still worth a look).
    judges_service_calls: ClassVar[bool] = False
    # The calls whose request parameters this detector reads (the runner loads only those).
    reads_params: ClassVar[frozenset[str]] = frozenset()
    # Its hits say someone else holds the credentials: an attack sequence needs at least one such step.
    hostile: ClassVar[bool] = False
    # It reads the steps other detectors leave (attack sequences); its own hits are not steps.
    summarises_steps: ClassVar[bool] = False
    # Event streams it must alarm on and streams it must stay quiet on (detect/cases.py).
    cases: ClassVar[tuple[Case, ...]] = ()

    def check(self, look: Look) -> Iterable[Hit]:
        raise NotImplementedError


class DetectorMetadataError(ValueError):
    """A detector's metadata is unusable: the detector list refuses to load."""


DETECTOR_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
ATTACK_ID = re.compile(r"^T\d{4}(\.\d{3})?$")


def validate_detectors(detectors: Sequence[Detector]) -> None:
    """Every detector's metadata, checked once when the list loads: a unique kebab-case id, a tactic of
    the known list, ATT&CK technique ids, a title and a description, cases that are `Case`s with unique
    names. All problems are reported together."""
    problems: list[str] = []
    seen: set[str] = set()
    for detector in detectors:
        name = type(detector).__name__
        ident = getattr(detector, "id", None)
        if not isinstance(ident, str) or not DETECTOR_ID.match(ident):
            problems.append(f"{name}: id {ident!r} is not a kebab-case name")
        elif ident in seen:
            problems.append(f"{name}: id {ident!r} twice")
        seen.add(str(ident))
        tactic = getattr(detector, "tactic", None)
        if tactic not in TACTIC_ORDER:
            problems.append(f"{name}: tactic {tactic!r} is not one of {', '.join(TACTIC_ORDER)}")
        mitre = getattr(detector, "mitre", None)
        if not isinstance(mitre, tuple) or not mitre:
            problems.append(f"{name}: mitre must be a non-empty tuple of ATT&CK ids")
        else:
            problems += [f"{name}: {m!r} is not an ATT&CK technique id (T1234 or T1234.567)"
                         for m in mitre if not isinstance(m, str) or not ATTACK_ID.match(m)]
        for attr in ("title", "description"):
            value = getattr(detector, attr, None)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{name}: {attr} is empty")
        cases = getattr(detector, "cases", ())
        if not all(isinstance(c, Case) for c in cases):
            problems.append(f"{name}: cases must be Case objects")
        elif len({c.name for c in cases}) != len(cases):
            problems.append(f"{name}: two cases share a name")
    if problems:
        raise DetectorMetadataError("bad detector metadata:\n  " + "\n  ".join(problems))


def stable_weight(profile: Profile) -> float:
    """1 for an identity that never changes, toward 0 for one that changes most days."""
    return max(0.0, 1.0 - 1.5 * profile.change_rate) if profile.mature else 0.5
