"""What the dashboard's JSON API returns: plain dicts read from the store, one function per page.

Every function takes a store handle of its own (`Store.view()`), so requests run on their own
connections while a watcher writes through another."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import orjson

from nhiwatch.core.severity import SEVERITIES, severity_rank
from nhiwatch.core.times import iso_from_us
from nhiwatch.detect.findings_store import list_findings
from nhiwatch.detect.profile import Profile
from nhiwatch.inventory.risk import RISK_LEVELS
from nhiwatch.store.db import Store

# API sort key -> the inventory's (every ordering ends on the ARN: pages never overlap or skip a row)
IDENTITY_SORTS = {"risk": "risk", "name": "name", "type": "type", "account": "account",
                  "last_active": "last-active", "key_age": "key-age", "findings": "findings"}
TOP_VALUES = 15  # values shown per profile facet
# Bounds on what an identity's escalation view carries: the names in it come from IAM exports.
ROUTES_SHOWN, HOPS_SHOWN, CHECKS_SHOWN, STATEMENTS_SHOWN, TEXT_SHOWN = 50, 20, 20, 20, 2048
PROFILE_FACETS = {"apis": "api", "regions": "region", "networks": "net", "user_agents": "agent",
                  "assumed_by": "assumer", "resources": "resource"}


_KEY = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


class NotFound(LookupError):
    """The thing asked for is not in the store."""


def _has_rows(store: Store, table: str) -> bool:
    return store.has_table(table) and bool(store.con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1)")
                                           .fetchall()[0][0])


def overview(store: Store) -> dict:
    q = store.con.execute
    identities: dict = {"total": 0, "nhi": 0, "by_type": {}, "by_risk": dict.fromkeys(RISK_LEVELS, 0)}
    if _has_rows(store, "identities"):
        identities["total"], identities["nhi"] = q(
            "SELECT count(*), count(*) FILTER (category IN ('non-human', 'human-use-of-nhi')) FROM identities"
        ).fetchall()[0]
        identities["by_type"] = dict(q("SELECT nhi_type, count(*) FROM identities GROUP BY ALL ORDER BY 2 DESC")
                                     .fetchall())
        identities["by_risk"].update(q("SELECT risk_level, count(*) FROM identities GROUP BY ALL").fetchall())
    incidents: dict = {"open": 0, "by_severity": {}, "top": []}
    if store.has_table("incidents"):
        incidents["by_severity"] = dict(q("SELECT severity, count(*) FROM incidents WHERE status = 'open' "
                                          "GROUP BY ALL").fetchall())
        incidents["open"] = sum(incidents["by_severity"].values())
        incidents["top"] = list_incidents(store, status="open", limit=5)["items"]
    findings: dict = {"total": 0, "by_severity": {}, "by_day": []}
    if store.has_table("findings"):
        findings["by_severity"] = dict(q("SELECT severity, count(*) FROM findings GROUP BY ALL").fetchall())
        findings["total"] = sum(findings["by_severity"].values())
        days: dict[str, dict] = {}
        for day, severity, count in q("SELECT substr(first_seen, 1, 10), severity, count(*) FROM findings "
                                      "GROUP BY ALL ORDER BY 1").fetchall():
            days.setdefault(day, {"day": day, **dict.fromkeys(SEVERITIES, 0)})[severity] = count
        findings["by_day"] = list(days.values())
    total, first, last = q("SELECT count(*), min(epoch_us(event_time)), max(epoch_us(event_time)) FROM events"
                           ).fetchall()[0]
    return {"identities": identities, "incidents": incidents, "findings": findings,
            "events": {"total": total, "first": iso_from_us(first) if first else None,
                       "last": iso_from_us(last) if last else None}}


def identities(store: Store, *, search: str | None, nhi_type: str | None, account: str | None, risk: str | None,
               sort: str, order: str | None, limit: int, offset: int) -> dict:
    from nhiwatch.inventory.persist import list_identities

    if not _has_rows(store, "identities"):
        return {"total": 0, "limit": limit, "offset": offset, "items": [], "facets": {"types": [], "accounts": []},
                "inventory": False}
    total, rows = list_identities(store, types=[nhi_type] if nhi_type else None,
                                  accounts=[account] if account else None, level=risk, search=search,
                                  sort=IDENTITY_SORTS[sort], order=order, limit=limit, offset=offset)
    items = [{"arn": r["arn"], "name": r["name"], "account_id": r["account_id"], "nhi_type": r["nhi_type"],
              "category": r["category"], "risk_score": r["risk_score"], "risk_level": r["risk_level"],
              "last_active": r["last_active"], "key_age_days": r["oldest_key_days"], "findings": r["findings"],
              "owner": r["owner"]} for r in rows]
    q = store.con.execute
    facets = {"types": [t for (t,) in q("SELECT DISTINCT nhi_type FROM identities ORDER BY 1").fetchall()],
              "accounts": [a for (a,) in q("SELECT DISTINCT account_id FROM identities ORDER BY 1").fetchall()]}
    return {"total": total, "limit": limit, "offset": offset, "items": items, "facets": facets, "inventory": True}


def _top(values: dict[str, list[int]]) -> list[dict]:
    ranked = sorted(values.items(), key=lambda kv: (-kv[1][0], kv[0]))[:TOP_VALUES]
    return [{"name": name, "count": entry[0],
             "first_seen": iso_from_us(entry[1]) if len(entry) > 1 and entry[1] else None,
             "last_seen": iso_from_us(entry[2]) if len(entry) > 2 and entry[2] else None} for name, entry in ranked]


def profile_of(store: Store, arn: str) -> dict | None:
    if not store.has_table("profiles"):
        return None
    rows = store.con.execute("SELECT state FROM profiles WHERE identity = ?", [arn]).fetchall()
    if not rows:
        return None
    profile = Profile.from_state(orjson.loads(rows[0][0]))
    out = {"events": profile.n, "first_seen": iso_from_us(profile.first) if profile.first else None,
           "last_seen": iso_from_us(profile.last) if profile.last else None,
           "mature": profile.mature, "active_days": profile.days,
           # hours of the week, 0 = Monday 00:00 UTC: seven rows of 24
           "heatmap": [profile.hours[day * 24:(day + 1) * 24] for day in range(7)]}
    for key, facet in PROFILE_FACETS.items():
        out[key] = _top(profile.facets.get(facet, {}))
    return out


def _finding_row(finding: dict) -> dict:
    return {"id": finding["id"], "detector": finding["detector"], "title": finding.get("title"),
            "severity": finding["severity"], "first_seen": finding.get("first_seen"),
            "last_seen": finding.get("last_seen"), "explanation": finding.get("explanation"),
            "status": finding.get("status"), "incident_id": finding.get("incident_id"),
            "identity": (finding.get("identity") or {}).get("arn"), "mitre": finding.get("mitre") or []}


def identity(store: Store, arn: str) -> dict:
    from nhiwatch.inventory.persist import get_identity

    record = None
    if _has_rows(store, "identities"):
        try:
            record = get_identity(store, arn)
        except LookupError:
            record = None
    profile = profile_of(store, record.arn if record else arn)
    if record is None and profile is None:
        raise NotFound(f"no identity {arn!r} in the inventory or in the baselines")
    arn = record.arn if record else arn
    findings = []
    if store.has_table("findings"):
        rows = store.con.execute("SELECT finding, status, incident_id FROM findings WHERE identity = ? "
                                 "ORDER BY first_seen", [arn]).fetchall()
        findings = [_finding_row(dict(orjson.loads(text), status=state, incident_id=incident))
                    for text, state, incident in rows]
    out: dict = {"identity": None, "posture": [], "profile": profile, "findings": findings, "permissions": None,
                 "escalation": None}
    if record is None:
        out["identity"] = {"arn": arn, "name": arn.rsplit("/", 1)[-1], "account_id": arn.split(":")[4] if
                           arn.count(":") >= 5 else None, "in_inventory": False}
        return out
    now = datetime.now(timezone.utc)
    keys = []
    for key in record.keys:
        age = None
        if key.created:
            try:
                age = (now - datetime.fromisoformat(key.created.replace("Z", "+00:00"))).days
            except ValueError:
                age = None
        keys.append({"id": key.key_id or f"key {key.slot}", "status": "active" if key.active else "inactive",
                     "age_days": age, "created": key.created, "last_used": key.last_used})
    out["identity"] = {
        "arn": record.arn, "name": record.name, "account_id": record.account_id, "kind": record.kind,
        "nhi_type": record.nhi_type, "category": record.category, "type_detail": record.type_detail,
        "risk_score": record.risk_score, "risk_level": record.risk_level,
        "risk_reasons": [{"text": r.text, "points": r.counted or r.points, "factor": r.factor}
                         for r in record.risk_reasons],
        "last_active": record.last_active, "created": record.created, "owner": record.owner, "team": record.team,
        "keys": keys, "trust_summary": record.trust_summary, "evidence": record.evidence, "in_inventory": True}
    out["posture"] = [{"check": f.check, "severity": f.severity, "title": f.title, "detail": f.detail,
                       "owasp": f.owasp} for f in record.findings]
    if record.usage:
        usage = record.usage
        out["permissions"] = {"granted": usage.get("granted_patterns", 0),
                              "used": sorted({u["action"] for u in usage.get("used", []) if u.get("calls", 0) >
                                              u.get("errors", 0)}),
                              "unused": usage.get("unused_grants", []),
                              "unused_services": usage.get("unused_services", []),
                              "suggested_policy": usage.get("suggested_policy")}
    out["escalation"] = escalation(record.capabilities or {})
    return out


def _text(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= TEXT_SHOWN else text[:TEXT_SHOWN - 1] + "\u2026"


def _method(method_id: object) -> dict:
    from nhiwatch.inventory.methods import method

    try:
        title = method(str(method_id)).title
    except KeyError:
        title = None  # a method this version does not know (an inventory built by another one)
    return {"id": _text(method_id), "title": title}


def _texts(values: object, limit: int) -> list[str]:
    return [_text(v) for v in values[:limit]] if isinstance(values, list) else []


def _route(route: dict, full: bool) -> dict:
    """A stored route, bounded; `full` keeps each hop's checks (only the shortest route has them)."""
    hops = []
    for hop in (route.get("hops") or [])[:HOPS_SHOWN]:
        method = _method(hop.get("method"))
        out = {"from": _text(hop.get("from")), "to": _text(hop.get("to")), "method": method["id"],
               "title": method["title"]}
        if full:
            out.update(conditional=bool(hop.get("conditional")), note=_text(hop.get("note")) or None,
                       subject=_text(hop.get("subject")) or None,
                       checks=[{"action": _text(c.get("action")), "resource": _text(c.get("resource")),
                                "verdict": _text(c.get("verdict")), "principal": _text(c.get("principal")) or None,
                                "statements": _texts(c.get("statements"), STATEMENTS_SHOWN),
                                "undecided": _texts(c.get("undecided"), STATEMENTS_SHOWN)}
                               for c in (hop.get("checks") or [])[:CHECKS_SHOWN]])
        hops.append(out)
    return {"start": _text(route.get("start")) or None, "admin": _text(route.get("admin")),
            "conditional": bool(route.get("conditional")),
            "foothold": bool(route.get("foothold")), "via_member": _text(route.get("via_member")) or None,
            "methods": [_method(m) for m in (route.get("methods") or [])[:HOPS_SHOWN]], "hops": hops,
            "hops_total": len(route.get("hops") or [])}


def escalation(caps: dict) -> dict:
    """What the principal graph found for one identity: admin already (and through what), or its routes
    to admin: the shortest in full, with each hop's permission checks, and every route compact."""
    admin = _texts(caps.get("admin"), STATEMENTS_SHOWN)
    routes = caps.get("privesc_routes") or []
    shortest = caps.get("privesc_route")
    compact = [_route(r, full=False) for r in routes[:ROUTES_SHOWN]]
    best_hops = [(h.get("from"), h.get("to"), h.get("method")) for h in (shortest or {}).get("hops") or []]
    for route, stored in zip(compact, routes):
        # the shortest route is one of the compact ones: the page lists the others
        route["shortest"] = bool(shortest) and [(h.get("from"), h.get("to"), h.get("method"))
                                                for h in stored.get("hops") or []] == best_hops
    return {"admin": admin,
            "methods": [dict(_method(m), conditional=False) for m in (caps.get("privesc") or [])[:ROUTES_SHOWN]]
            + [dict(_method(m), conditional=True) for m in (caps.get("privesc_conditional") or [])[:ROUTES_SHOWN]],
            "shortest": _route(shortest, full=True) if shortest and not admin else None,
            "routes": compact if not admin else [], "routes_total": 0 if admin else len(routes)}


def findings(store: Store, *, severity: str, identity: str | None, status: str | None, limit: int,
             offset: int) -> dict:
    total, rows = list_findings(store, min_severity=severity, identity=identity, status=status, limit=limit,
                                offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": [_finding_row(f) for f in rows]}


def _incident_row(incident: dict) -> dict:
    return {"id": incident["id"], "title": incident.get("title"), "severity": incident["severity"],
            "score": incident.get("score"), "status": incident.get("status"),
            "first_seen": incident.get("first_seen"), "last_seen": incident.get("last_seen"),
            "identities": incident.get("identities") or [],
            "finding_count": len(incident.get("finding_ids") or [])}


def list_incidents(store: Store, *, status: str | None, limit: int = 500) -> dict:
    from nhiwatch.correlate.incidents import list_incidents as stored

    items = stored(store, status=status)
    return {"total": len(items), "items": [_incident_row(i) for i in items[:limit]]}


def incident(store: Store, incident_id: str) -> dict:
    from nhiwatch.correlate.incidents import get_incident

    found = get_incident(store, incident_id)
    if found is None:
        raise NotFound(f"no incident {incident_id!r}")
    summary = _incident_row(found)
    tactics = " -> ".join(found.get("tactics") or [])
    summary.update(summary="; ".join(filter(None, [tactics, *found.get("severity_reasons", [])])),
                   blast_radius=found.get("blast_radius"), accounts=found.get("accounts") or [],
                   addresses=found.get("addresses") or [])
    by_id = {f["id"]: f for f in found.get("findings", [])}
    timeline = []
    for entry in found.get("timeline") or []:
        finding = by_id.get(entry.get("finding_id") or "")
        timeline.append({"time": entry.get("time"), "kind": entry.get("kind"), "identity": entry.get("identity"),
                         "from": entry.get("from"), "title": entry.get("title"), "severity": entry.get("severity"),
                         "detector": finding["detector"] if finding else entry.get("kind"),
                         "finding_id": entry.get("finding_id"),
                         "explanation": finding.get("explanation") if finding else None})
    return {"incident": summary, "timeline": timeline, "graph": incident_graph(found)}


def _node_kind(name: str) -> str:
    if name.startswith("arn:aws:iam::") and ":role/" in name:
        return "role"
    if name.startswith("arn:aws:iam::") and ":user/" in name:
        return "user"
    if name.endswith(":root"):
        return "root"
    if name.startswith(("AKIA", "ASIA")):
        return "key"
    if name.isdigit() and len(name) == 12:
        return "account"
    if name.endswith(".amazonaws.com"):
        return "service"
    if name[:1].isdigit() or ":" in name and name.count(":") >= 2 and not name.startswith("arn:"):
        return "network"
    if name.startswith("arn:"):
        return "other"
    return "federated" if ":" in name else "other"


def incident_graph(found: dict) -> dict:
    """Nodes: the identities, credentials and networks the incident links; edges: how they are linked."""
    severity_of: dict[str, str] = {}
    for finding in found.get("findings", []):
        arn = (finding.get("identity") or {}).get("arn")
        if arn and (arn not in severity_of or severity_rank(finding["severity"]) > severity_rank(severity_of[arn])):
            severity_of[arn] = finding["severity"]
    nodes: dict[str, dict] = {}

    def node(name: str, kind: str | None = None) -> str:
        if name not in nodes:
            label = name.rsplit("/", 1)[-1] if name.startswith("arn:") else name
            nodes[name] = {"id": name, "label": label, "kind": kind or _node_kind(name),
                           "severity": severity_of.get(name), "detail": name}
        return name

    for arn in found.get("identities") or []:
        node(arn)
    edges: dict[tuple[str, str, str], dict] = {}

    def edge(source: str, target: str, label: str) -> None:
        edges.setdefault((source, target, label), {"source": source, "target": target, "label": label})

    for link in found.get("links") or []:
        source, target, kind = str(link.get("from") or ""), str(link.get("to") or ""), str(link.get("kind") or "")
        detail = str(link.get("detail") or "")
        if not source or not target:
            continue
        node(source), node(target)
        if kind == "shared-address" and detail:
            # the address is the pivot: both identities called from it
            address = node(detail, "network")
            edge(source, address, "called from")
            edge(target, address, "called from")
        elif kind == "key-lineage" and (key := _KEY.search(detail)):
            credential = node(key.group(0), "key")
            edge(source, credential, "issued")
            edge(credential, target, "used by")
        else:
            edge(source, target, kind + (f" ({detail})" if kind in ("assumes", "cross-account") and detail else ""))
    return {"nodes": list(nodes.values()), "edges": list(edges.values())}
