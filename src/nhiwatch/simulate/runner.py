"""Generate the simulated organisation's CloudTrail, IAM files and labels, in parallel, deterministically.

Work is split into account-days. Each one rebuilds the organisation from the same arguments
(cheap, and nothing large crosses process boundaries), draws from its own random stream seeded
by (seed, account, day), and writes its own files, so the output does not depend on how many
processes ran or in which order.
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import orjson

from nhiwatch.core.compression import gzip_compress
from nhiwatch.simulate import iam
from nhiwatch.simulate.activity import DayContext, account_day
from nhiwatch.simulate.legit_org import HEURISTIC_KINDS
from nhiwatch.simulate.org import Org, build_org
from nhiwatch.simulate.records import iso
from nhiwatch.simulate.scenarios import SCENARIOS, Detonations, Placement, default_detonations_dir, place, play, scenario_by_id

FILE_SECONDS = 300  # CloudTrail delivers a file per account and region about every 5 minutes


@dataclass(frozen=True)
class SimConfig:
    seed: int = 1
    accounts: int = 2
    days: int = 30
    scale: float = 1.0
    start: str = "2026-03-01"
    scenarios: tuple[str, ...] | None = None  # None = all
    detonations: str | None = None
    compresslevel: int = 1  # AWS compresses harder; readers cannot tell, generation is faster

    def start_datetime(self) -> datetime:
        return datetime.fromisoformat(self.start).replace(tzinfo=timezone.utc)


@dataclass
class DayResult:
    events: int = 0
    files: int = 0
    active: list[str] = field(default_factory=list)  # principals active that day
    last_used: dict[str, tuple[float, str, str]] = field(default_factory=dict)  # arn or key -> (t, region, service)
    attacks: list[dict] = field(default_factory=list)
    change_events: dict[str, list[str]] = field(default_factory=dict)


_ORG_CACHE: dict[SimConfig, tuple[Org, list[Placement]]] = {}


def organisation(config: SimConfig) -> tuple[Org, list[Placement]]:
    """The org and where its attacks go; memoised per process."""
    if config not in _ORG_CACHE:
        org = build_org(config.seed, config.accounts, config.scale, config.days, config.start_datetime())
        chosen = SCENARIOS if config.scenarios is None else [scenario_by_id(s) for s in config.scenarios]
        placements = place(org, chosen, random.Random(config.seed * 7919 + 17))
        for placement in placements:
            if placement.scenario.id == "oidc-foreign-repository":
                _misconfigure_oidc_trust(org.identity(placement.victim))
        _ORG_CACHE.clear()
        _ORG_CACHE[config] = (org, placements)
    return _ORG_CACHE[config]


def _misconfigure_oidc_trust(victim) -> None:
    """The weakness the scenario abuses: a subject condition that admits any repository."""
    for statement in victim.trust_policy["Statement"]:
        statement["Condition"]["StringLike"] = {"token.actions.githubusercontent.com:sub": "repo:*"}


def _principal_of(identity: dict | None) -> str | None:
    if not isinstance(identity, dict):
        return None
    issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
    return issuer.get("arn") or identity.get("arn")


def run_day(config: SimConfig, account_index: int, day: int, out: str) -> DayResult:
    org, placements = organisation(config)
    account = org.accounts[account_index]
    ctx = DayContext(org, account, day, seed=config.seed * 1_000_003 + account_index * 10_007 + day)
    events = account_day(ctx)
    result = DayResult()
    detonations = Detonations(Path(config.detonations) if config.detonations else None)
    for placement in placements:
        if placement.account == account.id and ctx.t0 <= placement.start < ctx.t1:
            attack = play(ctx, placement, detonations, events)
            times = [e[0] for e in attack.events]
            related = sorted({_principal_of(r.get("userIdentity")) for _, _, r in attack.events} - {None, attack.victim.arn})
            result.attacks.append({
                "id": placement.scenario.id, "title": placement.scenario.title,
                "stratus": placement.scenario.stratus, "mitre": placement.scenario.mitre,
                "account_id": account.id, "principal": attack.victim.arn, "archetype": attack.victim.archetype,
                "related_principals": related, "network": placement.scenario.network,
                "source_ip": attack.source_ip, "start": iso(min(times)), "end": iso(max(times)),
                "event_ids": attack.ids})
            events.extend(attack.events)
    events.sort(key=lambda e: e[0])
    # One pass: who made each call (identity blocks are shared by a session's calls, so each is
    # resolved once) and which delivery file it goes into (account, region, 5 minutes).
    seen: dict[int, str | None] = {}
    principals = []
    buckets: dict[tuple[str, str, int], list[dict]] = {}
    for t, region, record in events:
        identity = record.get("userIdentity")
        key = id(identity)
        principal = seen.get(key, 0)
        if principal == 0:
            principal = seen[key] = _principal_of(identity)
        principals.append(principal)
        buckets.setdefault((record["recipientAccountId"], region, int(t // FILE_SECONDS)), []).append(record)
    result.change_events = _change_events(ctx, events, principals)

    # Last use of each principal and long-term key (for the IAM files): walk back from the end.
    for index in range(len(events) - 1, -1, -1):
        principal = principals[index]
        if principal is None:
            continue
        t, region, record = events[index]
        if principal not in result.last_used:
            result.last_used[principal] = (t, region, record["eventSource"].split(".", 1)[0])
        key = record["userIdentity"].get("accessKeyId", "")
        if key.startswith("AKIA") and key not in result.last_used:
            result.last_used[key] = (t, region, record["eventSource"].split(".", 1)[0])
    active = set(principals)
    active.discard(None)

    rng = random.Random(ctx.rng.getrandbits(64))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    root = Path(out) / "cloudtrail" / "AWSLogs" / org.org_id
    made: set[Path] = set()
    for (acct, region, bucket), records in sorted(buckets.items()):
        delivered = datetime.fromtimestamp((bucket + 1) * FILE_SECONDS, timezone.utc)
        folder = root / acct / "CloudTrail" / region / delivered.strftime("%Y/%m/%d")
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        suffix = "".join(rng.choices(alphabet, k=16))
        name = f"{acct}_CloudTrail_{region}_{delivered.strftime('%Y%m%dT%H%MZ')}_{suffix}.json.gz"
        body = orjson.dumps({"Records": records})
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(gzip_compress(body, config.compresslevel))
        result.files += 1
    result.events = len(events)
    result.active = sorted(active)
    return result


CHANGE_IDS_PER_DAY = 3000  # at most this many event ids per change and account-day in labels.json


def _change_events(ctx: DayContext, events: list, principals: list[str | None]) -> dict[str, list[str]]:
    """Event ids that show each legitimate change.

    The library's generators tag the records they make for a change (DayContext.tag); for the older
    kinds, the events of the changed identity on the day of the change and the day after, and the
    calls that name it, are taken."""
    found: dict[str, list[str]] = {}
    if ctx.tagged:
        present = {e[2]["eventID"] for e in events}  # tagged records outside the day were dropped
        for cid, ids in ctx.tagged.items():
            kept = [i for i in dict.fromkeys(ids) if i in present]
            if kept:
                found[cid] = kept[:CHANGE_IDS_PER_DAY]
    changes = [c for c in ctx.changes if ctx.t0 - 86400 <= c.when < ctx.t1 and c.kind in HEURISTIC_KINDS]
    if not changes:
        return found
    times = [e[0] for e in events]
    by_principal: dict[str, list[int]] = {}
    for index, principal in enumerate(principals):
        if principal:
            by_principal.setdefault(principal, []).append(index)
    # Calls that name a role or user in their request: STS hand-outs and IAM changes.
    naming = [i for i, e in enumerate(events) if e[2]["eventSource"] in ("sts.amazonaws.com", "iam.amazonaws.com")]
    for change in changes:
        lo = bisect.bisect_left(times, change.when - 3600)
        hi = bisect.bisect_left(times, change.when + 86400)
        target = next((i for i in ctx.account.identities if i.key == change.identity), None)
        if change.kind == "nat_change":
            hits = [i for i in range(lo, hi) if events[i][2]["sourceIPAddress"] in change.detail["ips"]]
        elif target is None:
            hits = []
        else:
            def names_target(i: int) -> bool:
                request = events[i][2].get("requestParameters") or {}
                return request.get("roleArn") == target.arn or request.get("roleName") == target.name or (
                    request.get("userName") == target.name)
            hits = sorted({i for i in by_principal.get(target.arn, []) if lo <= i < hi}
                          | {i for i in naming if lo <= i < hi and names_target(i)})
        if hits:
            ids = [events[i][2]["eventID"] for i in hits[:2000]]
            if change.id in found:
                ids = list(dict.fromkeys(found[change.id] + ids))[:CHANGE_IDS_PER_DAY]
            found[change.id] = ids
    return found


@dataclass
class SimSummary:
    out: str
    events: int
    files: int
    accounts: int
    identities: int
    nhis: int
    identity_days: int
    scenarios: int
    seconds: float
    events_per_second: float


def simulate(out: Path, config: SimConfig, workers: int | None = None,
             on_progress: Callable[[int, int], None] | None = None) -> SimSummary:
    started = time.perf_counter()
    if config.detonations is None:
        found = default_detonations_dir()
        config = SimConfig(**{**asdict(config), "detonations": str(found) if found else None})
    org, placements = organisation(config)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(a, d) for d in range(config.days) for a in range(len(org.accounts))]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    results: list[DayResult] = []
    done = 0
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(run_day, config, a, d, str(out)) for a, d in tasks]
            for future in futures:
                results.append(future.result())
                done += 1
                if on_progress:
                    on_progress(done, len(tasks))
    else:
        for a, d in tasks:
            results.append(run_day(config, a, d, str(out)))
            done += 1
            if on_progress:
                on_progress(done, len(tasks))

    last_used: dict[str, tuple[float, str, str]] = {}
    for result in results:
        for key, value in result.last_used.items():
            if key not in last_used or value[0] > last_used[key][0]:
                last_used[key] = value
    iam.write_account_files(out / "iam", org, last_used)
    change_events: dict[str, list[str]] = {}
    for result in results:
        for cid, ids in result.change_events.items():
            change_events.setdefault(cid, []).extend(ids)
    identity_days = sum(len(r.active) for r in results)
    attacks = sorted((a for r in results for a in r.attacks), key=lambda a: a["start"])
    labels = {
        "generator": "nhiwatch simulate",
        "config": {k: v for k, v in asdict(config).items() if k != "detonations"},
        "detonations_used": config.detonations is not None,
        "org_id": org.org_id,
        "accounts": [{"id": a.id, "name": a.name} for a in org.accounts],
        "start": iso(org.start), "end": iso(org.end), "days": config.days,
        "identities": len(org.identities()),
        "nhis": sum(1 for i in org.identities() if i.nhi),
        "identity_days": identity_days,
        "scenarios": attacks,
        "scenarios_not_placed": sorted({p.scenario.id for p in placements} - {a["id"] for a in attacks}),
        "changes": [{"id": c.id, "kind": c.kind, "account_id": c.account, "description": c.description,
                     "principal": org.identity(c.identity).arn if c.identity else None,
                     "related_principals": [org.identity(k).arn for k in c.detail.get("principals", [])
                                            if k != c.identity],
                     "start": iso(c.when), "event_ids": change_events.get(c.id, [])} for c in org.changes],
    }
    (out / "labels.json").write_bytes(orjson.dumps(labels, option=orjson.OPT_INDENT_2))
    events = sum(r.events for r in results)
    seconds = time.perf_counter() - started
    return SimSummary(str(out), events, sum(r.files for r in results), len(org.accounts), len(org.identities()),
                      labels["nhis"], identity_days, len(attacks), round(seconds, 2),
                      round(events / seconds) if seconds else 0)
