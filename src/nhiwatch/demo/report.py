"""A self-contained HTML report of a demo run: no external assets, opens from disk anywhere.

Every value comes from the events or the simulation and is text: `_e` escapes it for element content
and quoted attributes alike, and shows control and bidi characters as visible escapes. The report
makes no link from a value, so a `javascript:` URL in an event stays text."""

from __future__ import annotations

import html
from datetime import datetime, timezone

from nhiwatch.core.text import visible

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2430;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde3ea;padding-bottom:.3rem}
.muted{color:#667085} table{border-collapse:collapse;width:100%;margin:.5rem 0} th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eef1f5;vertical-align:top}
th{background:#f6f8fa;font-weight:600} .cards{display:flex;gap:1rem;flex-wrap:wrap} .card{border:1px solid #dde3ea;border-radius:8px;padding:.7rem 1rem;min-width:140px}
.card b{display:block;font-size:1.4rem} code{font-size:12px;background:#f6f8fa;padding:1px 4px;border-radius:4px}
.yes{color:#0a7a3d;font-weight:600} .no{color:#b42318;font-weight:600} .note{background:#fff8e6;border:1px solid #f5d48a;padding:.6rem .9rem;border-radius:6px}
"""


def _e(value: object) -> str:
    # quote=True: also safe inside the single-quoted attributes below
    return html.escape(visible(value, newlines=True), quote=True)


def _table(headers: list[str], rows: list[list[object]], raw_cols: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if i in raw_cols else _e(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bars(points: list[tuple[str, int]], width: int = 1000, height: int = 160) -> str:
    """Events per day as an inline SVG bar chart."""
    if not points:
        return "<p class='muted'>no events</p>"
    top = max(v for _, v in points) or 1
    bar = width / len(points)
    rects = []
    for i, (label, value) in enumerate(points):
        h = (height - 20) * value / top
        rects.append(f"<rect x='{i * bar + 1:.1f}' y='{height - 20 - h:.1f}' width='{max(bar - 2, 1):.1f}' "
                     f"height='{h:.1f}' fill='#3b82f6'><title>{_e(label)}: {value:,} events</title></rect>")
    labels = "".join(f"<text x='{i * bar + bar / 2:.1f}' y='{height - 5}' font-size='9' text-anchor='middle' "
                     f"fill='#667085'>{_e(label[5:])}</text>" for i, (label, _) in enumerate(points)
                     if i % max(1, len(points) // 15) == 0)
    return (f"<svg viewBox='0 0 {width} {height}' width='100%' role='img' aria-label='events per day'>"
            f"{''.join(rects)}{labels}</svg>")


ROUTES_LISTED = 50  # identities with a route to admin named in the report; the rest are counted


def _short(arn: str) -> str:
    if "*" in arn:  # a foothold route ends on every principal of a kind
        kind = arn.rsplit(":", 1)[-1].split("/", 1)[0]
        return f"any {kind}"
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


def route_text(route: dict) -> str:
    """`iam-005 (write an inline policy on a role) → deploy → sts-001 (...) → admin-role (admin)`."""
    from nhiwatch.inventory.methods import method

    def title(method_id: str) -> str:
        try:
            return f"{method_id} ({method(method_id).title})"
        except KeyError:
            return method_id

    steps = [f"member {_short(route['via_member'])}"] if route.get("via_member") else []
    for hop in route.get("hops") or []:
        steps += [title(hop["method"]), _short(hop["to"])]
    admin = _short(route.get("admin") or "")
    if steps and steps[-1] == admin:
        steps[-1] += " (admin)"
    elif admin:
        steps.append(f"{admin} (admin)")
    return " → ".join(steps) + (" [conditional]" if route.get("conditional") else "") + (
        " [any foothold]" if route.get("foothold") else "")


def escalation_summary(identities, limit: int = ROUTES_LISTED) -> dict:
    """The identities the principal graph finds a route to admin from (not resting on a condition),
    riskiest first: each with its shortest route and how many routes it has."""
    found = [i for i in identities if (i.capabilities or {}).get("privesc") and i.capabilities.get("privesc_route")]
    found.sort(key=lambda i: (-i.risk_score, i.arn))
    conditional = sum(1 for i in identities if (i.capabilities or {}).get("privesc_conditional")
                      and not i.capabilities.get("privesc"))
    return {"total": len(found), "conditional_only": conditional,
            "rows": [{"arn": i.arn, "type": i.nhi_type, "risk": i.risk_score, "level": i.risk_level,
                      "route": route_text(i.capabilities["privesc_route"]),
                      "routes": len(i.capabilities.get("privesc_routes") or [])} for i in found[:limit]]}


def _escalation(esc: dict) -> list[str]:
    if not esc.get("total"):
        return ["<h3>Routes to admin</h3>", "<p class='muted'>No identity has a route to admin"
                + (f" (the routes of {_e(esc['conditional_only'])} rest on a condition)" if esc.get("conditional_only")
                   else "") + ".</p>"]
    rows = esc["rows"]
    more = esc["total"] - len(rows)
    return ["<h3>Routes to admin</h3>",
            f"<p>{_e(esc['total'])} identit{'y' if esc['total'] == 1 else 'ies'} can become admin; each one's "
            "shortest route, method by method (nhiwatch posture paths ARN shows every hop's evidence):</p>",
            _table(["identity", "risk", "shortest route to admin", "routes"],
                   [[r["arn"], f"{r['risk']} {r['level']}", r["route"], r["routes"]] for r in rows]),
            *([f"<p class='muted'>… and {_e(more)} more identities with a route to admin.</p>"] if more > 0 else []),
            *([f"<p class='muted'>{_e(esc['conditional_only'])} more have routes resting on a condition nhiwatch "
               "cannot decide.</p>"] if esc.get("conditional_only") else [])]


def render(data: dict) -> str:
    """data: the demo's summary (see demo.run)."""
    sim, ingest, stats, labels = data["simulation"], data["ingest"], data["stats"], data["labels"]
    cards = [("accounts", sim["accounts"]), ("non-human identities", sim["nhis"]), ("days", labels["days"]),
             ("events", f"{stats['events']:,}"), ("attack scenarios", len(labels["scenarios"])),
             ("legitimate changes", len(labels["changes"]))]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>nhiwatch demo report</title><style>{_CSS}</style></head><body>",
        "<h1>nhiwatch demo report</h1>",
        f"<p class='muted'>Generated {_e(datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))} · "
        f"simulated organisation <code>{_e(labels['org_id'])}</code>, {_e(labels['start'])} to {_e(labels['end'])}"
        f" · seed {_e(labels['config']['seed'])}</p>",
        "<div class='cards'>" + "".join(f"<div class='card'><b>{_e(v)}</b>{_e(k)}</div>" for k, v in cards) + "</div>",
        "<h2>Stages</h2>",
        _table(["stage", "result"], [[s["stage"], s["result"]] for s in data["stages"]]),
    ]
    if data.get("inventory"):
        inv = data["inventory"]
        parts += ["<h2>Inventory</h2>",
                  "<p>" + " · ".join(f"{_e(n)} {_e(k)}" for k, n in inv["by_category"].items()) + "</p>",
                  _table(["NHI type", "identities"], [[k, n] for k, n in inv["by_type"].items()]),
                  "<h3>Riskiest non-human identities</h3>",
                  _table(["identity", "type", "risk", "why", "posture findings"],
                         [[r["arn"], r["type"], f"{r['risk']} {r['level']}", "; ".join(r["reasons"]),
                           "; ".join(r["findings"])] for r in inv["riskiest"]]),
                  "<p>Posture findings at medium or above by OWASP NHI Top 10: " + ", ".join(
                      f"{_e(k)} {_e(n)}" for k, n in sorted(inv["by_owasp"].items())) + "</p>"]
        if "escalation" in inv:
            parts += _escalation(inv["escalation"])
    if data.get("findings"):
        parts += ["<h2>Findings (medium and above)</h2>",
                  _table(["severity", "first seen", "detector", "identity", "explanation"],
                         [[f["severity"], f["first_seen"], f["detector"], f["identity"]["arn"], f["explanation"]]
                          for f in data["findings"][:60]])]
    if data.get("incidents"):
        parts += ["<h2>Incidents</h2>",
                  _table(["incident", "severity", "identities", "tactics", "response it would take (dry-run)"],
                         [[i["id"], i["severity"], ", ".join(i["identities"]), " → ".join(i["tactics"]),
                           "; ".join(f"{p['action']} on {p['identity'].rsplit('/', 1)[-1]}"
                                     + (f" (refused: {p['refused']})" if p.get("refused") else "")
                                     for p in i["response"])]
                          for i in data["incidents"]])]
    elif not data.get("findings"):
        parts.append("<p class='note'>No findings at medium or above.</p>")
    if data.get("evaluation"):
        ev = data["evaluation"]
        parts += ["<h2>Detection quality</h2>",
                  _table(["scenario", "detected", "first alert", "detectors"],
                         [[s["id"], "<span class='yes'>yes</span>" if s["detected"] else "<span class='no'>no</span>",
                           s.get("time_to_first_alert_seconds"), ", ".join(s.get("detectors", []))]
                          for s in ev["scenarios"]], raw_cols={1}),
                  f"<p>recall {_e(ev.get('recall'))} · precision {_e(ev.get('precision'))} · false alerts per 1,000 "
                  f"identity-days {_e(ev.get('false_alerts_per_1000_identity_days'))}</p>"]
    parts += [
        "<h2>Events per day</h2>", _bars(data["events_per_day"]),
        "<h2>Injected attacks</h2>",
        _table(["scenario", "compromised identity", "techniques", "start (UTC)", "events", "from"],
               [[f"{s['id']}: {s['title']}", s["principal"], ", ".join(s["stratus"] + s["mitre"]), s["start"],
                 len(s["event_ids"]), s["network"]] for s in labels["scenarios"]]),
        "<h2>Legitimate change</h2>",
        _table(["change", "kind", "start (UTC)", "what"],
               [[c["id"], c["kind"], c["start"], c["description"]] for c in labels["changes"]]),
        "<h2>Most active identities</h2>",
        _table(["principal", "type", "events"], [[r["principal"], r["principal_type"], f"{r['events']:,}"]
                                                 for r in data["top_identities"]]),
        "<h2>Ingestion</h2>",
        _table(["files", "records", "accepted", "duplicate", "quarantined", "skipped files"],
               [[ingest["files"], ingest["records"], ingest["accepted"], ingest["duplicate"], ingest["quarantined"],
                 ingest["files_skipped"]]]),
        "<p class='muted'>nhiwatch works offline; this file has no external resources.</p></body></html>",
    ]
    return "\n".join(parts)
