"""Detection quality benchmark: quiet on legitimate behaviour, sure on attacks, run as a new user runs it.

    python bench/quality_bench.py                        # 3 accounts x 30 days, every scenario and replay
    python bench/quality_bench.py --accounts 1 --days 5  # a quick look
    python bench/quality_bench.py --json out.json        # the figures as JSON too

Cold start: no --learn-until, the inventory loaded from the simulator's IAM exports, the simulator's
legitimate behaviour on, every attack scenario of the library and every Stratus detonation replay.
Simulates into WORKDIR/data (reused when its labels say it was made with the same settings; --fresh
makes it again), analyzes into a fresh WORKDIR/store, scores and prints:

  recall (library and replays apart, the missed ones with the best severity that fired),
  false alerts per 1,000 NHI-days (total, day one, after day one; target <= 0.5), by detector,
  by kind of legitimate change, by identity, the most severe false alerts with their explanation,
  low-severity noise per 1,000 NHI-days, the share of findings on legitimate change that the engine
  explains (expected_change), where the attacks were placed, and the time of each stage.

It reports, it does not gate: the exit code is 0 whenever it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from nhiwatch.evaluation.scoring import EvalReport, nhi_days_by_day, score

HERE = Path(__file__).resolve().parent
TARGET_FALSE_ALERTS = 0.5  # medium+ false alerts per 1,000 NHI-days, day one included
TARGET_RECALL = 0.95
CLOSE_SECONDS = 6 * 3600  # two attacks on one identity this close can share the findings that catch them


def all_scenarios() -> list[str]:
    from nhiwatch.simulate.scenarios import REPLAY_PREFIX, SCENARIOS, detonation_techniques

    return [s.id for s in SCENARIOS] + [f"{REPLAY_PREFIX}{t}" for t in detonation_techniques()]


def sim_config(args, scenarios: list[str]):
    from nhiwatch.simulate.runner import SimConfig

    return SimConfig(seed=args.seed, accounts=args.accounts, days=args.days, scale=args.scale, start=args.start,
                     scenarios=tuple(scenarios))


def reusable(data: Path, config) -> bool:
    """The simulation in `data` was made with these settings (the simulator's code may still differ)."""
    try:
        labels = json.loads((data / "labels.json").read_text())
    except (OSError, ValueError):
        return False
    made = labels.get("config") or {}
    wanted = {k: v for k, v in asdict(config).items() if k != "detonations"}
    wanted["scenarios"] = list(wanted["scenarios"])
    return all(made.get(k) == v for k, v in wanted.items()) and (data / "cloudtrail").is_dir()


def placement(labels: dict, requested: list[str]) -> dict:
    """Which attacks were placed, and which identities carry more than one."""
    placed = [s["id"] for s in labels.get("scenarios") or []]
    by_victim: dict[str, list[dict]] = defaultdict(list)
    for s in labels.get("scenarios") or []:
        by_victim[s.get("principal") or "?"].append(s)
    close = []
    for victim, attacks in by_victim.items():
        attacks.sort(key=lambda s: s["start"])
        for a, b in zip(attacks, attacks[1:]):
            gap = _seconds(b["start"]) - _seconds(a["end"])
            if gap < CLOSE_SECONDS:
                close.append({"victim": victim, "attacks": [a["id"], b["id"]], "gap_seconds": round(gap)})
    shared = {v: [s["id"] for s in attacks] for v, attacks in by_victim.items() if len(attacks) > 1}
    return {"requested": len(requested), "placed": len(placed),
            "not_placed": sorted(set(requested) - set(placed)),
            "victims": len(by_victim), "shared_victims": shared, "close_on_one_victim": close}


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("  [meets target]" if ok else "  [misses target]")


def print_report(report: EvalReport, labels: dict, place: dict, times: dict, args, command: str) -> None:
    detected = sum(r.detected for r in report.scenarios)
    lib_hits = sum(r.detected for r in report.scenarios if r.kind == "library")
    rep_hits = sum(r.detected for r in report.scenarios if r.kind == "replay")
    print(f"nhiwatch quality benchmark: cold start (no --learn-until), {args.accounts} accounts x {args.days} days, "
          f"scale {args.scale}, seed {args.seed}")
    print(f"data                  {args.workdir / 'data'} ({times['data']})")
    print(f"organisation          {labels.get('identities')} identities, {labels.get('nhis')} non-human; "
          f"{len(labels.get('changes') or [])} legitimate changes of "
          f"{len({c.get('kind') for c in labels.get('changes') or []})} kinds")
    print(f"attacks               {place['placed']}/{place['requested']} placed on {place['victims']} identities"
          + (f"; NOT placed: {', '.join(place['not_placed'])}" if place["not_placed"] else ""))
    if place["shared_victims"]:
        most = max(len(v) for v in place["shared_victims"].values())
        print(f"                      {len(place['shared_victims'])} identities carry more than one attack "
              f"(at most {most}); {len(place['close_on_one_victim'])} pairs within "
              f"{CLOSE_SECONDS // 3600} h of each other on one identity")
        for pair in place["close_on_one_victim"]:
            print(f"                        {' + '.join(pair['attacks'])} on {pair['victim']} "
                  f"({pair['gap_seconds'] / 60:.0f} min apart)")
    print()
    ok = None if report.recall is None else report.recall >= TARGET_RECALL
    print(f"recall                {_pct(report.recall)} ({detected}/{len(report.scenarios)}; target >= "
          f"{TARGET_RECALL:.0%}){_verdict(ok)}")
    print(f"  library scenarios   {_pct(report.recall_library)} ({lib_hits}/{report.scenarios_library})")
    print(f"  Stratus replays     {_pct(report.recall_replays)} ({rep_hits}/{report.scenarios_replays})")
    for m in report.missed:
        print(f"  missed              {m['id']} [{m['kind']}] on {m['principal']} "
              f"(best severity: {m['best_severity'] or 'nothing fired'})")
    print(f"precision             {_pct(report.precision)} ({report.true_positive_findings}/"
          f"{report.findings_counted} medium+ findings on an attack; {report.wrong_identity} on the wrong identity)")
    print(f"time to alert         mean {report.mean_time_to_alert_seconds or 0:.0f} s, median "
          f"{report.median_time_to_alert_seconds or 0:.0f} s")
    print()
    fa = report.false_alerts_per_1000_nhi_days
    print(f"NHI-days              {report.nhi_days:,} (day one {report.first_day}: {report.day_one_nhis} NHIs active)")
    print(f"false alerts          {_rate(fa)} per 1,000 NHI-days ({report.false_alerts} medium+; target <= "
          f"{TARGET_FALSE_ALERTS}){_verdict(None if fa is None else fa <= TARGET_FALSE_ALERTS)}")
    print(f"  day one             {_rate(report.day_one_false_alerts_per_1000_nhi_days)} per 1,000 NHI-days "
          f"({report.day_one_false_alerts})")
    print(f"  after day one       {_rate(report.after_day_one_false_alerts_per_1000_nhi_days)} per 1,000 NHI-days "
          f"({report.after_day_one_false_alerts})")
    print(f"  on legitimate change {report.false_alerts_on_change}")
    print(f"low-severity noise    {_rate(report.low_noise_per_1000_nhi_days)} per 1,000 NHI-days "
          f"({report.low_noise_findings} low/info findings not on an attack)")
    print(f"explained share       {_pct(report.explained_share)} ({report.change_findings_explained}/"
          f"{report.change_findings} findings on legitimate-change events carry expected_change)")
    if report.false_alerts_by_detector:
        print("\nfalse alerts by detector            alerts  day one  per 1,000 NHI-days")
        for d in report.false_alerts_by_detector:
            print(f"  {d.detector:<34}{d.false_alerts:>6}  {d.day_one:>7}  {_rate(d.per_1000_nhi_days):>8}")
    print("\nlegitimate change by kind           changes  events  false alerts  medium+  low/info  explained")
    for k in report.false_alerts_by_change_kind:
        print(f"  {k.kind:<34}{k.changes:>7}  {k.events:>6}  {k.false_alerts:>12}  {k.findings_medium_plus:>7}  "
              f"{k.findings_below_medium:>8}  {k.explained:>9}")
    if report.false_alerts_by_identity:
        print("\nidentities with the most false alerts")
        for i in report.false_alerts_by_identity:
            print(f"  {i.false_alerts:>4}  {i.identity}  ({', '.join(i.detectors)})")
    if report.false_alert_samples:
        print(f"\ntop false alerts (of {report.false_alerts})")
        for s in report.false_alert_samples[:args.top]:
            kinds = f" change: {', '.join(s.change_kinds)}" if s.change_kinds else ""
            print(f"  {s.severity:<8} {s.detector} {s.time}{' (day one)' if s.day_one else ''} {s.identity}{kinds}")
            print(f"           {s.explanation[:200]}")
    print(f"\ntimes                 {times['text']}")
    print(f"reproduce             {command}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7,
                        help="simulation seed (7: no two attacks within hours of each other on one identity)")
    parser.add_argument("--start", default="2026-03-01", help="first simulated day (UTC)")
    parser.add_argument("--scenario", action="append", default=None,
                        help="scenario id or replay:<technique> (repeatable); default every scenario and replay")
    parser.add_argument("--workdir", type=Path, default=HERE / "out" / "quality",
                        help="data/ (the simulation, reused) and store/ (made afresh) go here")
    parser.add_argument("--fresh", action="store_true", help="simulate again even when WORKDIR/data matches")
    parser.add_argument("--workers", type=int, default=None, help="simulator and ingest processes")
    parser.add_argument("--top", type=int, default=10, help="false alerts to print with their explanation")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()

    from nhiwatch.pipeline import analyze
    from nhiwatch.simulate.runner import simulate
    from nhiwatch.store.db import Store

    known = all_scenarios()
    requested = args.scenario or known
    unknown = sorted(set(requested) - set(known))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}")
    command = shlex.join([os.path.relpath(sys.executable), os.path.relpath(__file__), "--accounts",
                          str(args.accounts), "--days", str(args.days), "--scale", str(args.scale), "--seed",
                          str(args.seed), "--start", args.start, "--workdir", str(args.workdir),
                          *[x for s in (args.scenario or []) for x in ("--scenario", s)]])
    data, home = args.workdir / "data", args.workdir / "store"
    config = sim_config(args, requested)
    started = time.perf_counter()
    if not args.fresh and reusable(data, config):
        made = datetime.fromtimestamp((data / "labels.json").stat().st_mtime, timezone.utc)
        data_note = f"reused, simulated {made:%Y-%m-%d %H:%M} UTC; --fresh to simulate again"
        sim_seconds = None
    else:
        if data.exists():
            if not (data / "labels.json").is_file() and any(data.iterdir()):
                sys.exit(f"{data} holds something that is not a simulation: choose another --workdir")
            shutil.rmtree(data)
        print(f"simulating {args.accounts} accounts x {args.days} days, {len(requested)} attacks ...", flush=True)
        summary = simulate(data, config, workers=args.workers)
        sim_seconds = time.perf_counter() - started
        data_note = f"simulated now: {summary.events:,} events in {sim_seconds:.0f} s"
    labels = json.loads((data / "labels.json").read_text())
    if not labels.get("detonations_used"):
        print("note: no Stratus detonation files found; replays fall back to the key calls only", flush=True)

    shutil.rmtree(home, ignore_errors=True)
    print("analyzing (cold start) ...", flush=True)
    started = time.perf_counter()
    with Store(home) as store:
        result = analyze(store, [str(data / "cloudtrail")], iam=[str(data / "iam")], workers=args.workers)
        analyze_seconds = time.perf_counter() - started
        started = time.perf_counter()
        nhi_days = nhi_days_by_day(store.con)
        events = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
    findings = [f.to_dict() for f in result.findings]
    report = score(labels, findings, nhi_days=nhi_days)
    score_seconds = time.perf_counter() - started
    place = placement(labels, requested)
    times = {
        "simulate_seconds": None if sim_seconds is None else round(sim_seconds, 1),
        "analyze_seconds": round(analyze_seconds, 1),
        "detect_seconds": round(result.detect.seconds, 1),
        "score_seconds": round(score_seconds, 1),
        "events": events,
        "data": data_note,
    }
    times["text"] = (("simulate reused" if sim_seconds is None else f"simulate {sim_seconds:.0f} s") +
                     f", analyze {analyze_seconds:.0f} s (of which detection {result.detect.seconds:.0f} s, "
                     f"{events:,} events), NHI-days + scoring {score_seconds:.1f} s")
    print_report(report, labels, place, times, args, command)
    for problem in result.problems[:10] + report.problems[:10]:
        print(f"note: {problem}")
    if args.json:
        figures = {"command": command, "cold_start": True,
                   "config": {"accounts": args.accounts, "days": args.days, "scale": args.scale, "seed": args.seed,
                              "start": args.start, "scenarios": requested},
                   "targets": {"false_alerts_per_1000_nhi_days": TARGET_FALSE_ALERTS, "recall": TARGET_RECALL},
                   "placement": place, "times": {k: v for k, v in times.items() if k != "text"},
                   "nhi_days_by_day": nhi_days, "by_severity": result.detect.by_severity,
                   "report": report.as_dict()}
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
