"""What every detector is: a small class with its metadata and one `check` that looks at an event
against the identity's baseline *before* the event is learned."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import ClassVar, Iterable

from nhiwatch.detect.profile import Ev, Profile

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

    @property
    def human(self) -> bool:
        return self.category == "human"


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

    def baseline(self) -> str:
        """The identity's normal in one sentence (or its peers' while it is young)."""
        profile = self.profile if self.profile.mature or self.peers is None else self.peers
        whose = "it" if profile is self.profile else "its peer group"
        if profile.n == 0:
            return "it has no history yet"
        apis = profile.top("api", 4)
        nets = profile.top("net", 2)
        regions = profile.top("region", 2)
        agents = profile.top("agent", 2)
        busy = sorted(range(168), key=lambda h: -profile.hours[h])[:1]
        return (f"{whose} normally calls {len(profile.facets['api'])} APIs (mostly "
                f"{', '.join(a for a, _ in apis)}) from {len(profile.facets['net'])} networks (mostly "
                f"{', '.join(n for n, _ in nets)}) in {', '.join(r for r, _ in regions) or 'no region'} with "
                f"{', '.join(a for a, _ in agents)}, {profile.n:,} calls over {profile.days} active days"
                + (f", busiest {DAYS[busy[0] // 24]} {busy[0] % 24:02d}:00" if busy else ""))

    def what(self) -> str:
        ev = self.ev
        marks = [f"{facet} never seen" for facet, is_new in self.new.items() if is_new]
        return (f"at {self.when()} it called {ev.api} from {ev.ip or 'no address'} ({self.net}) with {self.agent}"
                + (f" in {ev.region}" if ev.region else "") + (f" [{', '.join(marks)}]" if marks else ""))


@dataclass
class Hit:
    severity: str
    strength: float                 # 0..1, the anomaly's own strength
    explanation: str
    evidence: dict = field(default_factory=dict)
    key: str = ""                   # hits of a detector with the same key close in time become one finding
    mitre: tuple[str, ...] = ()
    stratus: tuple[str, ...] = ()


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

    def check(self, look: Look) -> Iterable[Hit]:
        raise NotImplementedError


def stable_weight(profile: Profile) -> float:
    """1 for an identity that never changes, toward 0 for one that changes most days."""
    return max(0.0, 1.0 - 1.5 * profile.change_rate) if profile.mature else 0.5
