"""One identity's normal: counts and first-seen times per facet, hour-of-week activity, hourly volume,
error rates, who assumes it, where its sessions come from.

State grows with the identity's distinct values, never with its events: every facet is a dict of
value -> [count, first seen], capped, and the short window of recent calls is bounded in time.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

FACETS = ("api", "net", "wide_net", "agent", "region", "assumer", "subject", "subject_owner", "target_account",
          "target_role", "resource", "service_api", "walked")
FACET_CAP = 2000          # distinct values kept per facet; the rarest are dropped past it
SESSION_CAP = 400         # sessions remembered for session-level facts
HELD_CAP = 32             # contexts held out of the baseline behind open findings
STEP_CAP = 64             # recent tactic steps kept for attack sequences
WINDOW_SECONDS = 15 * 60  # the recent-calls window windowed detectors look at
HOUR = 3600 * 1_000_000
DAY = 24 * HOUR


class Ev(NamedTuple):
    """One event as the engine sees it (times in microseconds since the epoch)."""
    identity: str
    inbound: bool           # an assumption of this role by someone else, not a call it made
    t: int
    uid: str
    event_id: str
    api: str
    name: str
    region: str | None
    account: str | None
    ip: str | None
    ip_kind: str | None
    vpce: str | None
    agent: str | None
    error: str | None
    read_only: bool | None
    session: str | None
    key: str | None
    caller: str | None
    caller_type: str | None
    assumed_role: str | None
    subject: str | None
    params: str | None      # request parameters, loaded only for the calls whose arguments detectors read
    resource: str | None    # the main resource named (bucket, secret, parameter...), if any
    invoked_by: str | None = None  # userIdentity.invokedBy: the AWS service that made the call with the identity


class Profile:
    """Mutable baseline of one identity; `to_state`/`from_state` give its JSON form."""

    def __init__(self) -> None:
        self.n = 0
        self.first = 0
        self.last = 0
        self.facets: dict[str, dict[str, list[int]]] = {f: {} for f in FACETS}
        self.singles: dict[str, int] = {f: 0 for f in FACETS}
        self.seen: dict[str, int] = {f: 0 for f in FACETS}   # observations per facet
        self.hours = [0] * 168
        self.days = 0
        self.last_day = -1
        self.novel_days = 0       # days on which the identity called an API for the first time
        self.last_novel_day = -1
        self.errors = 0
        self.denied = 0
        self.hour_key = -1
        self.hour_count = 0
        self.hour_stats = [0, 0.0, 0.0]  # Welford: active hours, mean, M2 of calls per active hour
        self.sessions: dict[str, list[str]] = {}
        self.window: list[tuple[int, str, bool, bool, str]] = []  # (t, api, denied, read, resource)
        # Contexts ("net|agent") behind an open medium+ finding: their events are judged, never learned,
        # until the finding is resolved benign. Value: [first held, last seen, detectors that alerted].
        self.held: dict[str, list] = {}
        self.steps: list[tuple[int, str, str, bool]] = []  # (t, tactic, detector, hostile) of recent hits
        self.judged = 0  # newest event time judged or learned (held events included): late history shows behind it

    # -- reading -------------------------------------------------------------------------------

    def count(self, facet: str, value: str) -> int:
        entry = self.facets[facet].get(value)
        return entry[0] if entry else 0

    def knows(self, facet: str, value: str) -> bool:
        return value in self.facets[facet]

    def novelty_rate(self, facet: str) -> float:
        """Chance the next observation of a facet is a value never seen (Good-Turing, smoothed)."""
        return (self.singles[facet] + 1) / (self.seen[facet] + 2)

    def surprise(self, facet: str) -> float:
        """How unexpected a new value of the facet is, in nats: high for identities that never change."""
        return -math.log(self.novelty_rate(facet))

    @property
    def span_days(self) -> float:
        return (self.last - self.first) / DAY if self.n else 0.0

    @property
    def mature(self) -> bool:
        """Enough history to judge by itself: a day of activity spread over at least two days."""
        return self.is_mature(self.n, self.days, self.first, self.last)

    @staticmethod
    def is_mature(n: int, days: int, first: int, last: int) -> bool:
        return n >= 30 and days >= 2 and last - first >= DAY

    @property
    def change_rate(self) -> float:
        """Share of active days that brought a new API: 0 for a fixed workload, near 1 for a human."""
        return self.novel_days / self.days if self.days else 1.0

    def hourly_rate(self) -> tuple[float, float]:
        """Mean and standard deviation of calls per active hour."""
        n, mean, m2 = self.hour_stats
        return mean, math.sqrt(m2 / (n - 1)) if n > 1 else mean

    def top(self, facet: str, k: int = 5) -> list[tuple[str, int]]:
        items = sorted(self.facets[facet].items(), key=lambda kv: -kv[1][0])[:k]
        return [(value, entry[0]) for value, entry in items]

    def hour_share(self, hour_of_week: int) -> float:
        total = sum(self.hours)
        if not total:
            return 0.0
        around = sum(self.hours[(hour_of_week + d) % 168] for d in (-1, 0, 1))
        return around / total

    # -- learning -------------------------------------------------------------------------------

    def observe(self, facet: str, value: str | None, t: int) -> bool:
        """Count one value; True when it was new."""
        if value is None:
            return False
        values = self.facets[facet]
        self.seen[facet] += 1
        entry = values.get(value)
        if entry is None:
            if len(values) >= FACET_CAP:
                self._evict(facet)
            values[value] = [1, t]
            self.singles[facet] += 1
            return True
        if entry[0] == 1:
            self.singles[facet] -= 1
        entry[0] += 1
        return False

    def _evict(self, facet: str) -> None:
        values = self.facets[facet]
        for value, _ in sorted(values.items(), key=lambda kv: kv[1][0])[: FACET_CAP // 10]:
            if values[value][0] == 1:
                self.singles[facet] -= 1
            del values[value]

    def touch(self, t: int) -> None:
        """Time bookkeeping for any event: span, active days, hour of week, hourly volume."""
        if self.n == 0:
            self.first = t
        self.n += 1
        self.last = max(self.last, t)
        day = t // DAY
        if day != self.last_day:
            self.days += 1
            self.last_day = day
        hour = t // HOUR
        self.hours[(hour + 72) % 168] += 1  # the epoch was a Thursday: +72 h makes 0 = Monday 00:00
        if hour != self.hour_key:
            if self.hour_key >= 0:
                self._close_hour()
            self.hour_key, self.hour_count = hour, 0
        self.hour_count += 1

    def _close_hour(self) -> None:
        n, mean, m2 = self.hour_stats
        n += 1
        delta = self.hour_count - mean
        mean += delta / n
        m2 += delta * (self.hour_count - mean)
        self.hour_stats = [n, mean, m2]

    def note_novel_api(self, t: int) -> None:
        day = t // DAY
        if day != self.last_novel_day:
            self.novel_days += 1
            self.last_novel_day = day

    def remember_session(self, session: str, network: str) -> None:
        networks = self.sessions.get(session)
        if networks is None:
            if len(self.sessions) >= SESSION_CAP:
                self.sessions.pop(next(iter(self.sessions)))
            self.sessions[session] = [network]
        elif network not in networks and len(networks) < 8:
            networks.append(network)

    def push_window(self, t: int, api: str, denied: bool, read: bool, resource: str) -> None:
        self.window.append((t, api, denied, read, resource))
        horizon = t - WINDOW_SECONDS * 1_000_000
        if self.window[0][0] < horizon:
            self.window = [w for w in self.window if w[0] >= horizon]
        if len(self.window) > 5000:
            self.window = self.window[-5000:]

    def hold(self, context: str, t: int, detectors: Sequence[str] = ()) -> None:
        """Keep a context out of the baseline (an open finding stands behind it), noting which detectors
        alerted on it."""
        entry = self.held.get(context)
        if entry is None:
            if len(self.held) >= HELD_CAP:
                self.held.pop(min(self.held, key=lambda k: self.held[k][1]))
            entry = self.held[context] = [t, t, []]
        entry[1] = max(entry[1], t)
        entry[2].extend(d for d in detectors if d not in entry[2])

    def push_step(self, t: int, tactic: str, detector: str, hostile: bool) -> None:
        horizon = t - HOUR
        self.steps = [s for s in self.steps if s[0] >= horizon][-(STEP_CAP - 1):]
        self.steps.append((t, tactic, detector, hostile))

    # -- persistence ----------------------------------------------------------------------------

    _FIELDS = ("n", "first", "last", "facets", "singles", "seen", "hours", "days", "last_day", "novel_days",
               "last_novel_day", "errors", "denied", "hour_key", "hour_count", "hour_stats", "sessions", "window",
               "held", "steps", "judged")

    def to_state(self) -> dict:
        return {name: getattr(self, name) for name in self._FIELDS}

    @classmethod
    def from_state(cls, state: dict) -> "Profile":
        profile = cls()
        for name in cls._FIELDS:
            if name in state:
                setattr(profile, name, state[name])
        # JSON gives lists back; the engine keeps these as tuples
        profile.window = [(w[0], w[1], w[2], w[3], w[4]) for w in profile.window]
        profile.steps = [(s[0], s[1], s[2], s[3]) for s in profile.steps]
        for facet in FACETS:  # a facet added in a later version starts empty
            profile.facets.setdefault(facet, {})
            profile.singles.setdefault(facet, 0)
            profile.seen.setdefault(facet, 0)
        return profile
