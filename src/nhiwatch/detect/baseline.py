"""An identity's profile described for people: `nhiwatch baseline show`."""

from __future__ import annotations

import orjson

from nhiwatch.core.times import iso_from_us
from nhiwatch.detect.profile import FACETS, Profile
from nhiwatch.store.db import Store


def _iso(us: int) -> str:
    """A profile's time (microseconds since the epoch; 0 when it has none) as the store writes times."""
    return iso_from_us(us) if us else ""


def find_profile(store: Store, reference: str) -> tuple[str, Profile]:
    if not store.has_table("profiles"):
        raise LookupError("no baselines in this store: run 'nhiwatch analyze' first")
    rows = store.con.execute("SELECT identity, state FROM profiles WHERE identity = ?", [reference]).fetchall() or \
        store.con.execute("SELECT identity, state FROM profiles WHERE identity LIKE ?", [f"%{reference}%"]).fetchall()
    if not rows:
        raise LookupError(f"no baseline for {reference!r}")
    if len(rows) > 1:
        raise LookupError(f"{reference!r} matches {len(rows)} identities; give the full ARN")
    return rows[0][0], Profile.from_state(orjson.loads(rows[0][1]))


def describe(identity: str, profile: Profile) -> dict:
    mean, deviation = profile.hourly_rate()
    heatmap = [profile.hours[day * 24:(day + 1) * 24] for day in range(7)]
    top = {facet: [{"value": v, "count": c, "first_seen": _iso(profile.facets[facet][v][1])}
                   for v, c in profile.top(facet, 8)] for facet in FACETS}
    summary = (f"{profile.n:,} calls from {_iso(profile.first)} to {_iso(profile.last)} on {profile.days} active "
               f"days; {'mature' if profile.mature else 'still learning (judged with its peer group)'}; "
               f"{len(profile.facets['api'])} APIs, {len(profile.facets['net'])} networks, "
               f"{len(profile.facets['agent'])} client families, {len(profile.facets['region'])} regions; "
               f"{mean:.0f} calls per active hour (sd {deviation:.0f}); {profile.errors:,} errors, "
               f"{profile.denied:,} denied; a new API on {profile.change_rate:.0%} of active days")
    return {"identity": identity, "summary": summary, "events": profile.n, "mature": profile.mature,
            "first_seen": _iso(profile.first), "last_seen": _iso(profile.last), "active_days": profile.days,
            "change_rate": round(profile.change_rate, 3), "hourly_mean": round(mean, 1),
            "hourly_sd": round(deviation, 1), "errors": profile.errors, "denied": profile.denied,
            "top": top, "heatmap": heatmap, "heat_max": max(profile.hours) if profile.n else 0,
            "novelty_rates": {f: round(profile.novelty_rate(f), 4) for f in ("api", "net", "agent", "region")}}
