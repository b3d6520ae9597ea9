"""Incidents: findings joined along the real links between identities, within a time window.

Two findings belong to one incident when, close enough in time,
- they are on the same identity;
- one identity handed credentials to the other (key lineage: a call made with a key that an
  AssumeRole, GetSessionToken, GetFederationToken or CreateAccessKey of the other returned);
- an edge of the identity graph joins the identities (assumes, cross-account, creates-key,
  modifies, passes-role, web-identity);
- they come from the same public address, or carry the same rare client fingerprint.
Evidence strangers share never links (see evidence.py): cloud, private and placeholder addresses, an
address many identities without findings use (a NAT or proxy), placeholder or shared key ids, common
clients.
An identity that only handed out the credentials (the leaked key that assumed the roles) joins the
incident as a pivot even when it raised nothing itself. Every incident keeps the links that made it,
so the join is as explainable as the findings.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import orjson

from nhiwatch.correlate.evidence import common_client, placeholder_key, unlinkable_address
from nhiwatch.correlate.graph import Edge, KeyOrigin, edges_touching, key_origins
from nhiwatch.core.incident import Incident, Link as LinkRecord, TimelineEntry
from nhiwatch.core.times import iso_from_us as iso_us
from nhiwatch.core.severity import SEVERITIES, severity_rank
from nhiwatch.store.db import Store

HOUR_US = 3_600_000_000
LINK_WINDOW_US = 12 * HOUR_US  # how far apart two identities' findings may be and still be one story
SAME_IDENTITY_GAP_US = 24 * HOUR_US
SHARED_ADDRESS_MAX_IDENTITIES = 10  # an address more identities use is a shared egress, not a link
SHARED_AGENT_MAX_IDENTITIES = 3
# An address that this many identities with no finding at all also use is a NAT or proxy egress: the
# crowd behind it is unrelated, so sharing it with an attacker's victims proves nothing.
NAT_BYSTANDERS = 2
SHARED_KEY_MAX_IDENTITIES = 2  # a real key id signs for one identity; one many sign with is a placeholder
# Kill-chain order, for telling how far an incident progressed.
TACTIC_ORDER = ("initial-access", "discovery", "credential-access", "privilege-escalation", "persistence",
                "lateral-movement", "defense-evasion", "execution", "collection", "exfiltration", "impact")
OPEN_STATUSES = ("open", "resolved")  # suppressed and benign findings are not part of any story


@dataclass
class _Fact:
    """One finding with what correlation needs from its events."""

    finding: dict
    identity: str
    first: int
    last: int
    keys: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return self.finding["id"]


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def us_of(stamp: str) -> int:
    """An ISO-8601 UTC time of the finding contract as microseconds since the epoch."""
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1_000_000)


def _distance(fact: _Fact, t: int) -> int:
    return 0 if fact.first <= t <= fact.last else min(abs(fact.first - t), abs(fact.last - t))


FACT_EVENTS = 50


def _load_facts(store: Store) -> list[_Fact]:
    rows = store.con.execute("SELECT finding FROM findings WHERE status IN (SELECT unnest(?)) ORDER BY first_seen, id",
                             [list(OPEN_STATUSES)]).fetchall()
    facts = []
    for (text,) in rows:
        finding = orjson.loads(text)
        facts.append(_Fact(finding, finding["identity"]["arn"], us_of(finding["first_seen"]), us_of(finding["last_seen"])))
    by_event: dict[str, list[_Fact]] = defaultdict(list)
    for fact in facts:
        # The keys, addresses and clients of a finding show in its first and last calls; a finding of
        # hundreds of calls need not load them all.
        ids = fact.finding["event_ids"]
        for event_id in ids if len(ids) <= 2 * FACT_EVENTS else ids[:FACT_EVENTS] + ids[-FACT_EVENTS:]:
            by_event[event_id].append(fact)
    if by_event:
        cursor = store.con.cursor()
        cursor.execute("""SELECT event_id, principal, access_key_id, source_ip, source_ip_kind, user_agent FROM events
                          WHERE event_id IN (SELECT unnest(?))""", [list(by_event)])
        chunks = iter(lambda: cursor.fetchmany(10_000), [])
        for event_id, principal, key, address, kind, agent in (row for chunk in chunks for row in chunk):
            for fact in by_event[event_id]:
                # Event ids are not unique in every source (test data reuses "1"): only the finding's own
                # identity's events are its evidence.
                if principal != fact.identity:
                    continue
                # Evidence only an attacker's machine would share (evidence.py says why the rest is not).
                if key and placeholder_key(key) is None:
                    fact.keys.add(key)
                if kind in ("ipv4", "ipv6") and unlinkable_address(address) is None:
                    fact.addresses.add(address)
                if agent and common_client(agent) is None:
                    fact.agents.add(agent)
    return facts


def _rare(store: Store, column: str, values: set[str], limit: int, involved: set[str] | None = None) -> set[str]:
    """The values of a column (an address, a client, a key) that few identities use. With involved (the
    identities with findings), also fewer than NAT_BYSTANDERS others: a value the unrelated crowd uses in
    its normal traffic is an egress, not one machine."""
    if not values:
        return set()
    crowd = "true"
    if involved is not None:
        crowd = f"count(DISTINCT principal) FILTER (WHERE NOT list_contains(?, principal)) < {NAT_BYSTANDERS}"
    rows = store.con.execute(f"""SELECT {column} FROM events WHERE {column} IN (SELECT unnest(?))
                                 GROUP BY {column} HAVING count(DISTINCT principal) <= ? AND {crowd}""",
                             [sorted(values), limit] + ([sorted(involved)] if involved is not None else [])
                             ).fetchall()
    return {value for (value,) in rows}


@dataclass
class Link:
    kind: str
    src: str
    dst: str
    t: int
    event_id: str | None
    detail: str

    def to_dict(self) -> LinkRecord:
        return {"kind": self.kind, "from": self.src, "to": self.dst, "time": iso_us(self.t),
                "event_id": self.event_id, "detail": self.detail}


class _Joins:
    """The findings being joined into incidents, and why: each join_* step below adds one kind of link."""

    def __init__(self, facts: list[_Fact]) -> None:
        self.facts = facts
        self.union = _Union(len(facts))
        self.links: dict[int, list[Link]] = defaultdict(list)  # by the first fact of the pair; regrouped at the end
        self.pivots: dict[int, set[str]] = defaultdict(set)
        self.by_identity: dict[str, list[int]] = defaultdict(list)
        for i, fact in enumerate(facts):
            self.by_identity[fact.identity].append(i)

    def near(self, identity: str, t: int) -> list[int]:
        """The identity's alerts (medium+) around t: context below medium never pulls another identity in."""
        return [j for j in self.by_identity.get(identity, []) if _distance(self.facts[j], t) <= LINK_WINDOW_US
                and severity_rank(self.facts[j].finding["severity"]) >= 2]

    def join_same_identity(self) -> None:
        """The same identity, again within a day."""
        facts = self.facts
        for indices in self.by_identity.values():
            ordered = sorted(indices, key=lambda j: facts[j].first)
            reach = facts[ordered[0]].last
            for a, b in zip(ordered, ordered[1:]):
                if facts[b].first - reach <= SAME_IDENTITY_GAP_US:
                    self.union.join(a, b)
                reach = max(reach, facts[b].last)

    def join_key_lineage(self, store: Store) -> None:
        """The finding's calls were made with credentials another identity obtained."""
        # A key id that several identities sign with is not one credential (anonymised or sample data): no lineage.
        all_keys = {k for f in self.facts for k in f.keys}
        own_keys = _rare(store, "access_key_id", all_keys, SHARED_KEY_MAX_IDENTITIES)
        for fact in self.facts:
            fact.keys &= own_keys
        origins: dict[str, KeyOrigin] = key_origins(store, sorted(own_keys))
        for i, fact in enumerate(self.facts):
            for key in sorted(fact.keys):
                origin = origins.get(key)
                if origin is not None and origin.issuer != fact.identity and self._handed_over(fact, origin):
                    self._link_lineage(i, fact, key, origin)

    def _handed_over(self, fact: _Fact, origin: KeyOrigin) -> bool:
        """Whether the identity that obtained the key belongs in the finding's story."""
        # A long-term key (a rotation job's, stolen later) explains where the credentials came from; its
        # maker joins only when it alerted itself around the hand-out. Session credentials are short-lived:
        # whoever obtained them, shortly before, is part of the chain.
        long_term = origin.api == "iam:CreateAccessKey"
        if _distance(fact, origin.t) > LINK_WINDOW_US:
            return False
        return not long_term or bool(self.near(origin.issuer, origin.t))

    def _link_lineage(self, i: int, fact: _Fact, key: str, origin: KeyOrigin) -> None:
        self.links[i].append(Link("key-lineage", origin.issuer, fact.identity, origin.t, origin.event_id,
                                  f"{origin.api} by {origin.issuer} returned {key}, used by {fact.identity}"))
        self.pivots[i].add(origin.issuer)
        for j in self.near(origin.issuer, origin.t):
            self.union.join(i, j)

    def join_graph_edges(self, store: Store) -> None:
        """Identity-graph edges between identities with findings."""
        if not self.facts:
            return
        lower = min(f.first for f in self.facts) - LINK_WINDOW_US
        upper = max(f.last for f in self.facts) + LINK_WINDOW_US
        edges: list[Edge] = edges_touching(store, list(self.by_identity), lower, upper)
        for edge in edges:
            sources, targets = self.near(edge.src, edge.t), self.near(edge.dst, edge.t)
            for a in sources:
                for b in targets:
                    self.union.join(a, b)
            if sources and targets:
                self.links[sources[0]].append(Link(edge.kind, edge.src, edge.dst, edge.t, edge.event_id, edge.detail))

    def join_shared_evidence(self, store: Store) -> None:
        """A shared public address or rare client fingerprint, across identities."""
        involved = set(self.by_identity)
        for attribute, column, limit, kind in (
                ("addresses", "source_ip", SHARED_ADDRESS_MAX_IDENTITIES, "shared-address"),
                ("agents", "user_agent", SHARED_AGENT_MAX_IDENTITIES, "shared-client")):
            shared = self._shared_values(attribute)
            # An address the unrelated crowd also uses is an egress; clients have no such crowd test.
            crowd = involved if kind == "shared-address" else None
            for value in _rare(store, column, set(shared), limit, crowd):
                self._link_sharers(kind, value, sorted(shared[value], key=lambda j: self.facts[j].first))

    def _shared_values(self, attribute: str) -> dict[str, list[int]]:
        """Each value of a fact attribute (addresses, agents) that more than one identity shows -> its facts."""
        holders: dict[str, list[int]] = defaultdict(list)
        for i, fact in enumerate(self.facts):
            for value in getattr(fact, attribute):
                holders[value].append(i)
        return {v: idx for v, idx in holders.items() if len({self.facts[i].identity for i in idx}) > 1}

    def _link_sharers(self, kind: str, value: str, indices: list[int]) -> None:
        """Join every pair of alerting findings of different identities, close in time, that share value."""
        for a_pos, a in enumerate(indices):
            for b in indices[a_pos + 1:]:
                fa, fb = self.facts[a], self.facts[b]
                if fa.identity != fb.identity and _distance(fa, fb.first) <= LINK_WINDOW_US and min(
                        severity_rank(fa.finding["severity"]), severity_rank(fb.finding["severity"])) >= 2:
                    self.union.join(a, b)
                    self.links[a].append(Link(kind, fa.identity, fb.identity, fb.first, None, value))

    def incidents(self, store: Store) -> list[Incident]:
        """One incident per group of joined findings that holds an alert; known incidents keep their status."""
        groups: dict[int, list[int]] = defaultdict(list)
        for i in range(len(self.facts)):
            groups[self.union.find(i)].append(i)
        known = store.con.execute("SELECT id, status, finding_ids FROM incidents").fetchall()
        statuses = {incident_id: status for incident_id, status, _ in known}
        incidents: list[Incident] = []
        for members in groups.values():
            incident = _incident(store, [self.facts[i] for i in members],
                                 [link for i in members for link in self.links.get(i, [])],
                                 set().union(*(self.pivots.get(i, set()) for i in members)))
            if incident is not None:
                incidents.append(incident)
        _keep_known_ids(incidents, {incident_id: set(ids or ()) for incident_id, _, ids in known})
        for incident in incidents:
            incident["status"] = statuses.get(incident["id"], "open")
        return incidents


def _keep_known_ids(incidents: list[Incident], known: dict[str, set[str]]) -> None:
    """An incident that grew from one already known keeps that one's id: consumers (a SIEM, a ticket,
    a sink that was sent the id) follow an incident by it. Of several known ones it joins, it keeps
    the id of the one it shares most findings with; each known id goes to one incident only."""
    claims = []
    for index, incident in enumerate(incidents):
        members = set(incident["finding_ids"])
        for known_id, known_members in known.items():
            shared = len(members & known_members)
            if shared:
                claims.append((-shared, known_id != incident["id"], known_id, index))
    taken_ids: set[str] = set()
    renamed: set[int] = set()
    for _, _, known_id, index in sorted(claims):
        if known_id in taken_ids or index in renamed:
            continue
        taken_ids.add(known_id)
        renamed.add(index)
        incidents[index]["id"] = known_id
    # an incident new this time must not take an id that a known one kept
    for index, incident in enumerate(incidents):
        if index not in renamed and incident["id"] in taken_ids:
            incident["id"] = _fresh_id(incident["id"], taken_ids)
        taken_ids.add(incident["id"])


def _fresh_id(incident_id: str, taken: set[str]) -> str:
    salt = 1
    while (candidate := f"inc-{hashlib.blake2b(f'{incident_id}|{salt}'.encode(), digest_size=8).hexdigest()}") in taken:
        salt += 1
    return candidate


def correlate(store: Store) -> dict:
    """Rebuild the incidents from the findings; an incident's status survives the rebuild."""
    facts = _load_facts(store)
    joins = _Joins(facts)
    joins.join_same_identity()
    joins.join_key_lineage(store)
    joins.join_graph_edges(store)
    joins.join_shared_evidence(store)
    incidents = joins.incidents(store)
    _save(store, incidents)
    return {"incidents": len(incidents), "findings": len(facts),
            "by_severity": {s: sum(1 for x in incidents if x["severity"] == s) for s in SEVERITIES
                            if any(x["severity"] == s for x in incidents)}}


def _incident(store: Store, members: list[_Fact], links: list[Link], pivots: set[str]) -> Incident | None:
    alerting = [m for m in members if severity_rank(m.finding["severity"]) >= severity_rank("medium")]
    if not alerting:
        return None  # low findings are leads, not incidents
    members.sort(key=lambda m: (m.first, m.id))
    identities = list(dict.fromkeys(m.identity for m in members))
    pivot_only = sorted(pivots - set(identities))
    involved = identities + pivot_only
    tactics: list[str] = []
    for m in members:
        tactic = m.finding.get("tactic") or ""
        if tactic and tactic not in tactics:
            tactics.append(tactic)
    top = max(severity_rank(m.finding["severity"]) for m in members)
    raised = []
    if len(involved) >= 2:
        raised.append(f"{len(involved)} linked identities")
    if len(tactics) >= 3:
        raised.append(f"{len(tactics)} tactics in sequence")
    rank = min(top + len(raised), severity_rank("critical"))
    score = min(100, max(m.finding["score"] for m in members) + 10 * (len(involved) - 1) + 5 * (len(tactics) - 1))
    seen_links: dict[tuple, Link] = {}
    for link in sorted(links, key=lambda x: x.t):
        seen_links.setdefault((link.kind, link.src, link.dst, link.detail), link)
    timeline: list[TimelineEntry] = [{"time": m.finding["first_seen"], "kind": "finding", "identity": m.identity, "finding_id": m.id,
                 "severity": m.finding["severity"], "tactic": m.finding.get("tactic"), "title": m.finding["title"]}
                for m in members]
    timeline += [{"time": iso_us(link.t), "kind": link.kind, "identity": link.dst, "from": link.src,
                  "event_id": link.event_id, "title": link.detail} for link in seen_links.values()
                 if link.kind not in ("shared-address", "shared-client")]
    timeline.sort(key=lambda x: x["time"])
    lead = members[0]
    id_digest = hashlib.blake2b(lead.id.encode(), digest_size=8).hexdigest()
    names = [_short(arn) for arn in involved]
    chain = " -> ".join(tactics) if tactics else "activity"
    title = (f"{len(involved)} linked identities ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}): {chain}"
             if len(involved) > 1 else f"{names[0]}: {chain}")
    incident: Incident = {
        "id": f"inc-{id_digest}",
        "title": title,
        "severity": SEVERITIES[rank],
        "score": score,
        "severity_reasons": [f"highest finding severity {SEVERITIES[top]}"] + [f"raised: {r}" for r in raised],
        "first_seen": min(m.finding["first_seen"] for m in members),
        "last_seen": max(m.finding["last_seen"] for m in members),
        "identities": involved,
        "pivots": pivot_only,
        "accounts": sorted({m.finding["identity"].get("account_id") for m in members} - {None}),
        "tactics": tactics,
        "finding_ids": [m.id for m in members],
        "links": [link.to_dict() for link in seen_links.values()],
        "timeline": timeline,
        "blast_radius": blast_radius(store, involved),
        "addresses": sorted(set().union(*(m.addresses for m in members))),
    }
    return incident


def _short(principal: str) -> str:
    if principal.startswith("arn:"):
        return principal.rsplit("/", 1)[-1]
    subject = principal.split(":", 1)[-1]  # "<provider>:<subject>" of a federated user
    return subject if len(subject) <= 48 else subject[:45] + "..."


def blast_radius(store: Store, identities: list[str]) -> dict:
    """What the involved identities can reach, from the inventory: admin, escalation paths, data."""
    out: dict[str, dict] = {}
    if not store.has_table("identities"):
        return {"known": False, "identities": out}
    rows = store.con.execute("""SELECT arn, nhi_type, risk_level, json_extract(record, '$.capabilities')
                                FROM identities WHERE arn IN (SELECT unnest(?))""", [identities]).fetchall()
    for arn, kind, level, caps_text in rows:
        caps = orjson.loads(caps_text) if caps_text else {}
        out[arn] = {"type": kind, "risk_level": level, "admin": caps.get("admin") or [],
                    "privesc": caps.get("privesc") or [], "data_access": caps.get("data_access") or [],
                    "service_wildcards": sorted(caps.get("service_wildcards") or {})}
    return {"known": True, "admin": sorted(a for a, v in out.items() if v["admin"]),
            "can_escalate": sorted(a for a, v in out.items() if v["privesc"] and not v["admin"]),
            "data_access": sorted({d for v in out.values() for d in v["data_access"]}),
            "identities": out, "not_in_inventory": sorted(set(identities) - set(out))}


def _save(store: Store, incidents: list[Incident]) -> None:
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM incidents")
        con.execute("UPDATE findings SET incident_id = NULL WHERE incident_id IS NOT NULL")
        for incident in incidents:
            con.execute("INSERT INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [incident["id"], incident["severity"], incident["score"], incident["status"],
                         incident["first_seen"], incident["last_seen"], incident["identities"],
                         incident["finding_ids"], orjson.dumps(incident).decode()])
        pairs = [(fid, incident["id"]) for incident in incidents for fid in incident["finding_ids"]]
        if pairs:
            con.execute("""UPDATE findings SET incident_id = p.incident FROM
                           (SELECT unnest(?) AS fid, unnest(?) AS incident) p WHERE findings.id = p.fid""",
                        [[p[0] for p in pairs], [p[1] for p in pairs]])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def list_incidents(store: Store, *, min_severity: str = "low", status: str | None = "open") -> list[Incident]:
    if not store.has_table("incidents"):
        return []
    clauses, params = ["list_position(?, severity) >= ?"], [list(SEVERITIES), severity_rank(min_severity) + 1]
    if status:
        clauses.append("status = ?")
        params.append(status)
    rows = store.con.execute(f"""SELECT incident, status FROM incidents WHERE {' AND '.join(clauses)}
                                 ORDER BY list_position(?, severity) DESC, score DESC, first_seen""",
                             params + [list(SEVERITIES)]).fetchall()
    return [cast(Incident, dict(orjson.loads(text), status=state)) for text, state in rows]


def get_incident(store: Store, incident_id: str) -> Incident | None:
    if not store.has_table("incidents"):
        return None
    row = store.con.execute("SELECT incident, status FROM incidents WHERE id = ?", [incident_id]).fetchone()
    if row is None:
        return None
    incident = cast(Incident, dict(orjson.loads(row[0]), status=row[1]))
    findings = store.con.execute("SELECT finding FROM findings WHERE incident_id = ? ORDER BY first_seen",
                                 [incident_id]).fetchall()
    incident["findings"] = [dict(orjson.loads(text), incident_id=incident_id) for (text,) in findings]
    return incident
