"""Running the engine over the store: the events inserted since the last run, identity by identity,
with profiles, peer groups and inventory facts loaded around the pure step; profiles, findings and
the judged batch commit in one transaction, so a re-run never repeats a finding."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Sequence

import orjson
import pyarrow as pa

from nhiwatch.core.finding import Finding
from nhiwatch.core.severity import severity_rank
from nhiwatch.core.times import iso_from_us
from nhiwatch.detect.detectors import DETECTORS
from nhiwatch.detect.engine import Context, KeyOrigin, close_all, step
from nhiwatch.detect.features import agent_family, network_of
from nhiwatch.detect.detectors.base import IdentityInfo
from nhiwatch.detect.routes import Principal, PrincipalIndex
from nhiwatch.detect.profile import Ev, Profile
from nhiwatch.knowledge.vendors import vendor_for_account
from nhiwatch.store.db import Store

# Calls whose request parameters a detector (or the actor model: the Lambda runtime's kms:Decrypt) reads;
# other parameters are not loaded.
PARAM_APIS = sorted(set().union(*(d.reads_params for d in DETECTORS)) | {"kms:Decrypt"})
BATCH_ROWS = 50_000
BUCKET_ROWS = 200_000  # events sorted at once
CHUNK_EVENTS = 20_000  # a busy identity's events arrive in chunks of this size
DETECT_MEMORY = "384MB"
_NAME_SUFFIX = re.compile(r"[^a-z]+")


# Events older than this behind an identity's newest judged event are late history (see _rejudge);
# CloudTrail's own delivery across regions stays well inside it.
LATE_US = 3600 * 1_000_000


def _pending(lower_batch: int, upper_batch: int, learn_until_us: int | None, learning: bool) -> str:
    """Events inserted after the last judged batch; in a bootstrap, those before (or from) learn_until."""
    window = f"ingest_batch > {int(lower_batch)} AND ingest_batch <= {int(upper_batch)}"
    if learn_until_us is not None:
        window += f" AND epoch_us(event_time) {'<' if learning else '>='} {int(learn_until_us)}"
    return window


def ev_projection() -> str:
    """The columns of an `Ev`, as SQL over event rows: the same text for the embedded store and for
    the Spark engine (which runs it with DuckDB on each identity's rows), so both see the same events."""
    apis = ", ".join(f"'{a}'" for a in PARAM_APIS)
    return f"""epoch_us(event_time) AS t, hex(uid) AS uid, event_id, api, event_name, aws_region, account_id,
        source_ip, source_ip_kind, vpc_endpoint_id, user_agent, error_code, read_only, session, access_key_id,
        principal AS caller, principal_type AS caller_type, assumed_role_arn, federation_subject,
        CASE WHEN api IN ({apis}) THEN request_parameters END AS params,
        coalesce(list_filter(resources, lambda r: r.type IN ('s3:bucket', 'secretsmanager:secret',
                                                             'ssm:parameter'))[1].name,
                 list_filter(resources, lambda r: r.name LIKE 'arn:%')[1].name, resources[1].name) AS resource,
        invoked_by"""


# Whose events a row is: the caller's (outbound), and for a successful AssumeRole also the assumed
# role's (inbound: who assumes it). Shared with the Spark engine.
OUTBOUND_WHERE = "principal IS NOT NULL AND principal_type IN ('role', 'user', 'root')"
INBOUND_WHERE = "assumed_role_arn IS NOT NULL AND error_code IS NULL"
EV_ORDER = "identity, t, uid"


def _events_sql(window: str, bucket: int = 0, buckets: int = 1) -> str:
    common = ev_projection()
    return f"""
        SELECT * FROM (
          SELECT principal AS identity, false AS inbound, {common} FROM events
          WHERE {window} AND hash(principal) % {buckets} = {bucket} AND {OUTBOUND_WHERE}
          UNION ALL
          SELECT assumed_role_arn AS identity, true AS inbound, {common} FROM events
          WHERE {window} AND {INBOUND_WHERE} AND hash(assumed_role_arn) % {buckets} = {bucket})
        ORDER BY {EV_ORDER}"""


def iter_identity_events(store: Store, window: str) -> Iterator[tuple[str, list[Ev]]]:
    """(identity, its events in time order) for every identity with events in the window (SQL over the
    events table); a busy identity comes in several consecutive chunks.

    Identities are split into hash buckets so that each sort stays well inside the memory limit."""
    total = store.con.execute(f"SELECT count(*) FROM events WHERE {window}").fetchall()[0][0]
    buckets = max(1, -(-total // BUCKET_ROWS))
    cursor = store.con.cursor()  # its own connection: the stream stays open while the caller works
    for bucket in range(buckets):
        reader = cursor.sql(_events_sql(window, bucket, buckets)).to_arrow_reader(BATCH_ROWS)
        current: str | None = None
        group: list[Ev] = []
        for batch in reader:
            columns = batch.to_pydict()
            for row in zip(*columns.values()):
                ev = Ev(*row)
                if ev.identity != current or len(group) >= CHUNK_EVENTS:
                    if group:
                        yield current, group  # type: ignore[misc]
                    current, group = ev.identity, []
                group.append(ev)
        if group:
            yield current, group  # type: ignore[misc]


def peer_key(arn: str, kind: str, account: str | None) -> str:
    """Identities of one kind, account and naming convention (the name's last two words) are peers."""
    name = arn.rsplit("/", 1)[-1].lower()
    words = [w for w in _NAME_SUFFIX.split(name) if w][-2:]
    return f"{account}|{kind}|{'-'.join(words)}"


def third_party(external_accounts: list) -> str | None:
    """The third party a role is for: a known vendor's account in its trust policy, or any other
    account trusted only with an ExternalId (the confused-deputy guard AWS asks vendors to use)."""
    accounts = [a for a in external_accounts if isinstance(a, dict) and a.get("account_id")]
    for account in accounts:
        vendor = vendor_for_account(str(account["account_id"]))
        if vendor is not None:
            return vendor.name
    guarded = [str(a["account_id"]) for a in accounts if a.get("external_id")]
    return f"third party {guarded[0]}" if guarded else None


def identity_infos(store: Store) -> dict[str, IdentityInfo]:
    if not store.has_table("identities"):
        return {}
    # One parse of each record (records carry usage and can be large): the paths as a list.
    rows = store.con.execute("""
        SELECT arn, nhi_type, category, risk_score, risk_level, account_id,
               json_extract_string(record, ['$.unique_id', '$.trust_summary.services',
                                            '$.trust_summary.external_accounts', '$.capabilities.admin',
                                            '$.capabilities.privesc_routes', '$.instance_profiles'])
        FROM identities""").fetchall()
    infos = {}
    for arn, kind, category, score, level, account, facts in rows:
        unique_id, services, external, admin, routes, profiles = facts
        vendor = third_party(orjson.loads(external or "[]"))
        info = IdentityInfo(arn, kind, category, score or 0, level or "low", account,
                            services=tuple(orjson.loads(services or "[]")), vendor=vendor,
                            admin=bool(orjson.loads(admin or "[]")),
                            routes=tuple(r for r in orjson.loads(routes or "[]") if isinstance(r, dict)),
                            instance_profiles=tuple(str(p) for p in orjson.loads(profiles or "[]")))
        infos[arn] = info
        if unique_id:
            infos[f"role-id:{unique_id}"] = info
    return infos


def principal_index(infos: dict[str, IdentityInfo]) -> PrincipalIndex:
    """The inventory's users, roles and groups for the escalation-route detector."""
    principals = []
    for key, info in infos.items():
        kind = next((k for k in ("user", "role", "group") if f":{k}/" in info.arn), None)
        if key != info.arn or kind is None:
            continue
        route = next((r for r in info.routes if not r.get("conditional")), info.routes[0] if info.routes else None)
        principals.append(Principal(info.arn, kind, info.account_id, info.admin, route, info.instance_profiles))
    return PrincipalIndex(principals)


# Deploys of a workload, and which role they concern. The Lambda service assumes a function's role
# with the function's name as the session name, and CreateFunction / UpdateFunctionConfiguration name
# the role; task definitions name their task and execution roles; a stack change is its deploy role's.
_FUNCTION = r"regexp_extract(json_extract_string(request_parameters, '$.functionName'), '([^:]+?)(:[^:]*)?$', 1)"
CHANGES_SQL = f"""
WITH function_roles AS (
    SELECT DISTINCT account_id, assumed_session_name AS fn, assumed_role_arn AS role FROM events
    WHERE api = 'sts:AssumeRole' AND principal = 'lambda.amazonaws.com' AND assumed_role_arn IS NOT NULL
    UNION
    SELECT DISTINCT account_id, {_FUNCTION}, json_extract_string(request_parameters, '$.role') FROM events
    WHERE (api LIKE 'lambda:CreateFunction%' OR api LIKE 'lambda:UpdateFunctionConfiguration%')
      AND error_code IS NULL AND json_extract_string(request_parameters, '$.role') IS NOT NULL
),
function_deploys AS (
    SELECT account_id, {_FUNCTION} AS fn, epoch_us(event_time) AS t, event_id,
           replace(api, '20150331v2', '') || ' of ' || {_FUNCTION} || ' by ' || coalesce(principal, '?') AS what
    FROM events
    WHERE regexp_matches(api, '^lambda:(UpdateFunctionCode|UpdateFunctionConfiguration|CreateFunction|PublishVersion)')
      AND error_code IS NULL
),
task_deploys AS (
    SELECT unnest([json_extract_string(request_parameters, '$.taskRoleArn'),
                   json_extract_string(request_parameters, '$.executionRoleArn')]) AS role,
           epoch_us(event_time) AS t, event_id,
           'ecs:RegisterTaskDefinition of ' || coalesce(json_extract_string(request_parameters, '$.family'), '?')
           || ' by ' || coalesce(principal, '?') AS what
    FROM events WHERE api = 'ecs:RegisterTaskDefinition' AND error_code IS NULL
),
roles AS (SELECT DISTINCT principal AS arn, principal_account AS account_id FROM events WHERE principal_type = 'role'),
trust_updates AS (
    SELECT roles.arn AS role, epoch_us(e.event_time) AS t, e.event_id,
           'iam:UpdateAssumeRolePolicy by ' || coalesce(e.principal, '?') AS what
    FROM events e JOIN roles ON roles.account_id = e.account_id
     AND roles.arn LIKE '%/' || json_extract_string(e.request_parameters, '$.roleName')
    WHERE e.api = 'iam:UpdateAssumeRolePolicy' AND e.error_code IS NULL
)
SELECT r.role, d.t, d.event_id, d.what FROM function_deploys d
  JOIN function_roles r ON r.fn = d.fn AND r.account_id = d.account_id
UNION ALL SELECT role, t, event_id, what FROM task_deploys WHERE role IS NOT NULL
UNION ALL SELECT role, t, event_id, what FROM trust_updates
UNION ALL SELECT principal, epoch_us(event_time), event_id, api || ' of ' ||
       coalesce(json_extract_string(request_parameters, '$.stackName'), '?')
  FROM events WHERE api IN ('cloudformation:ExecuteChangeSet', 'cloudformation:UpdateStack',
                            'cloudformation:CreateStack') AND error_code IS NULL AND principal IS NOT NULL
ORDER BY 1, 2"""
# Which role a function or an instance runs as, for escalation hops on existing resources: the Lambda
# service assumes a function's role with the function's name as the session name, EC2 an instance's role
# with the instance id; CreateFunction and UpdateFunctionConfiguration name a function's role.
RUNS_AS_SQL = f"""
SELECT DISTINCT account_id, 'function', assumed_session_name, assumed_role_arn FROM events
WHERE api = 'sts:AssumeRole' AND principal = 'lambda.amazonaws.com' AND error_code IS NULL
  AND assumed_role_arn IS NOT NULL AND assumed_session_name IS NOT NULL
UNION
SELECT DISTINCT account_id, 'function', {_FUNCTION}, json_extract_string(request_parameters, '$.role') FROM events
WHERE (api LIKE 'lambda:CreateFunction%' OR api LIKE 'lambda:UpdateFunctionConfiguration%') AND error_code IS NULL
  AND json_extract_string(request_parameters, '$.role') IS NOT NULL
UNION
SELECT DISTINCT account_id, 'instance', assumed_session_name, assumed_role_arn FROM events
WHERE api = 'sts:AssumeRole' AND principal = 'ec2.amazonaws.com' AND error_code IS NULL
  AND assumed_role_arn IS NOT NULL AND assumed_session_name LIKE 'i-%'"""
# Access keys made with CreateAccessKey: who made each one, from where, with what.
KEY_ORIGINS_SQL = """
SELECT issued_access_key_id, principal, epoch_us(event_time), source_ip, source_ip_kind, vpc_endpoint_id, user_agent
FROM events WHERE api = 'iam:CreateAccessKey' AND error_code IS NULL AND issued_access_key_id IS NOT NULL"""
# The rows the two queries above read, for engines that must gather them first (Spark): plain SQL that
# DuckDB and Spark read alike.
CONTEXT_ROWS_WHERE = """(api LIKE 'lambda:UpdateFunctionCode%' OR api LIKE 'lambda:UpdateFunctionConfiguration%'
    OR api LIKE 'lambda:CreateFunction%' OR api LIKE 'lambda:PublishVersion%'
    OR api IN ('ecs:RegisterTaskDefinition', 'iam:UpdateAssumeRolePolicy', 'iam:CreateAccessKey',
               'cloudformation:ExecuteChangeSet', 'cloudformation:UpdateStack', 'cloudformation:CreateStack')
    OR (api = 'sts:AssumeRole' AND principal IN ('lambda.amazonaws.com', 'ec2.amazonaws.com')))"""


def workload_changes(con) -> dict[str, tuple[tuple[int, str, str], ...]]:
    """Deploys by the identity they concern: (time, event id, what), in time order."""
    out: dict[str, list[tuple[int, str, str]]] = {}
    for role, t, event_id, what in con.execute(CHANGES_SQL).fetchall():
        out.setdefault(role, []).append((t, event_id, what[:200]))
    return {role: tuple(items) for role, items in out.items()}


def workload_roles(con) -> dict[tuple[str | None, str, str], str]:
    """(account, 'function' or 'instance', name) -> the role it runs as (the latest seen wins nothing: one each)."""
    return {(account, kind, name): role for account, kind, name, role in con.execute(RUNS_AS_SQL).fetchall()
            if name and role}


def key_origins(con) -> dict[str, KeyOrigin]:
    return {key: KeyOrigin(creator, t, *network_of(ip, kind, vpce), agent_family(agent))
            for key, creator, t, ip, kind, vpce, agent in con.execute(KEY_ORIGINS_SQL).fetchall()}


def fallback_info(identity: str, caller_type: str | None, account: str | None) -> IdentityInfo:
    """Without an inventory: the principal type, and SSO roles and federated people as humans."""
    human = "AWSReservedSSO_" in identity or caller_type in ("saml",)
    parts = identity.split(":")
    owner = parts[4] if len(parts) > 4 and parts[4].isdigit() else account
    return IdentityInfo(identity, caller_type or "unknown", "human" if human else "unknown", 0, "low", owner)


@dataclass
class RunSummary:
    identities: int = 0
    events: int = 0
    findings: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)
    by_detector: dict[str, int] = field(default_factory=dict)
    watermark: str | None = None
    seconds: float = 0.0


def _load_profiles(store: Store) -> dict[str, str | bytes]:
    return dict(store.con.execute("SELECT identity, state FROM profiles").fetchall())


def add_to_peer_group(peers: dict[str, Profile], key: str, profile: Profile) -> None:
    """Fold a mature member into its peer group: the union of APIs, clients, regions and wide networks
    (counts summed, first seen the earliest), whatever order the members come in."""
    if not profile.mature:
        return
    group = peers.setdefault(key, Profile())
    for facet in ("api", "agent", "region", "wide_net"):
        for value, (count, first) in profile.facets[facet].items():
            entry = group.facets[facet].get(value)
            if entry is None:
                group.facets[facet][value] = [count, first]
            else:
                entry[0] += count
                entry[1] = min(entry[1], first)
    group.n += profile.n


def _peer_profiles(profiles: Iterator[tuple[str, Profile]], infos: dict[str, IdentityInfo]) -> dict[str, Profile]:
    peers: dict[str, Profile] = {}
    for identity, profile in profiles:
        info = infos.get(identity)
        add_to_peer_group(peers, peer_key(identity, info.kind if info else "unknown",
                                          info.account_id if info else None), profile)
    return peers


class _Profiles(dict):
    """Profiles by identity. Only the identities being judged are live objects; the rest stay as their
    compact stored state (a few KB instead of a few hundred KB of Python objects), so memory grows with
    the state's size, not with the objects of every identity at once."""

    def __init__(self, states: dict[str, str | bytes]) -> None:
        super().__init__()
        self.states = states

    def __missing__(self, identity: str) -> Profile:
        text = self.states.pop(identity, None)
        profile = self[identity] = Profile.from_state(orjson.loads(text)) if text else Profile()
        return profile

    def park(self, identity: str) -> None:
        """Put an identity's profile back into its compact form until it is needed again."""
        profile = self.pop(identity, None)
        if profile is not None:
            self.states[identity] = orjson.dumps(profile.to_state())

    def park_all(self) -> None:
        for identity in list(self):
            self.park(identity)

    def iter_all(self) -> Iterator[tuple[str, Profile]]:
        """Every profile, one at a time, without keeping them all alive."""
        self.park_all()
        for identity, text in self.states.items():
            yield identity, Profile.from_state(orjson.loads(text))


class DetectSession:
    """Detection over a store, run once (`run`) or again and again as events arrive (`nhiwatch watch`).

    Each `process` judges the events inserted since the last judged batch, identity by identity in
    time order (a late file is judged when it arrives), and commits profiles, findings and the new
    judged batch in one transaction. Between calls the session keeps the inventory facts, the known
    accounts and the peer groups, which are costly to rebuild, and refreshes them every
    `refresh_seconds`."""

    def __init__(self, store: Store, refresh_seconds: float = 900.0) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.profiles = _Profiles(_load_profiles(store))
        self._refreshed = -1.0e18
        self.infos: dict[str, IdentityInfo] = {}
        self.principals = PrincipalIndex()
        self.known_accounts: frozenset[str] = frozenset()
        self.peers: dict[str, Profile] | None = None

    def _refresh(self) -> None:
        if time.monotonic() - self._refreshed < self.refresh_seconds:
            return
        self.infos = identity_infos(self.store)
        self.principals = principal_index(self.infos)
        self.known_accounts = frozenset(a for (a,) in self.store.con.execute(
            "SELECT DISTINCT account_id FROM events WHERE account_id IS NOT NULL").fetchall()) | frozenset(
            i.account_id for i in self.infos.values() if i.account_id)
        self.peers = None
        self._refreshed = time.monotonic()

    def _context(self, identity: str, first: Ev, learn_until_us: int | None, changes: dict, origins) -> Context:
        info = self.infos.get(identity) or fallback_info(
            identity, None if first.inbound else first.caller_type, first.account)
        peer = (self.peers or {}).get(peer_key(identity, info.kind, info.account_id))
        return Context(info, peer, self.known_accounts, learn_until_us or 0,
                       changes=changes.get(identity, ()), key_origins=origins, principals=self.principals)

    def _rejudge(self, late: dict[str, int], findings: list[Finding], upper: int, learn_until_us: int | None,
                 changes: dict, origins) -> tuple[list[Finding], list[Finding]]:
        """History that arrives after later events were judged (a backfill read out of order, messages
        redelivered after a crash) means those events were judged without it: an identity that looked
        new may have had weeks of baseline. Such an identity, when it has findings from after the late
        history began, is judged again from its first stored event, in time order. A finding that comes
        out more severe is upgraded (and sent again where its new severity is wanted); a new one is
        added; none is taken back, since a person may already have seen it."""
        by_id = {f.id: f for f in findings}
        upgrades: list[Finding] = []
        self._refreshed = -1.0e18  # what is known of these identities was read before their history came
        self._refresh()
        self.peers = _peer_profiles(self.profiles.iter_all(), self.infos)
        for identity, since in late.items():
            since_iso = iso_from_us(since)
            stored = dict(self.store.con.execute(
                "SELECT id, severity FROM findings WHERE identity = ? AND last_seen >= ?",
                [identity, since_iso]).fetchall())
            if not stored and not any(f.identity["arn"] == identity and f.last_seen >= since_iso for f in findings):
                continue
            quoted = identity.replace("'", "''")
            window = f"ingest_batch <= {int(upper)} AND (principal = '{quoted}' OR assumed_role_arn = '{quoted}')"
            fresh, ctx, again = Profile(), None, []
            carry: dict = {}
            for who, events in iter_identity_events(self.store, window):
                if who != identity:
                    continue
                ctx = ctx or self._context(identity, events[0], learn_until_us, changes, origins)
                again += step(fresh, events, ctx, carry)
            if ctx is None:
                continue
            again += close_all(carry, ctx)
            self.profiles.pop(identity, None)
            self.profiles.states[identity] = orjson.dumps(fresh.to_state())
            # This call's findings on it were judged against a baseline that had seen the future: the
            # replay's stand instead.
            by_id = {i: f for i, f in by_id.items() if f.identity["arn"] != identity}
            for finding in again:
                if finding.id in stored:
                    if severity_rank(finding.severity) > severity_rank(stored[finding.id]):
                        upgrades.append(finding)
                else:
                    by_id[finding.id] = finding
        return list(by_id.values()), upgrades

    def judged_batch(self) -> int:
        row = self.store.con.execute("SELECT value FROM meta WHERE key = 'detect_judged_batch'").fetchone()
        return int(row[0]) if row else 0

    def process(self, *, learn_until: datetime | None = None, on_identity: Callable[[int], None] | None = None,
                also: Callable[[list[Finding]], None] | None = None) -> tuple[RunSummary, list[Finding]]:
        """Judge every pending event; `also(findings)` runs inside the commit's transaction (the outbox)."""
        started = time.perf_counter()
        store = self.store
        # Each sort is a bucket of at most BUCKET_ROWS events: a small DuckDB cache is enough, and the
        # memory is the profiles' and findings' (the configured limit comes back at the end).
        with store.memory_limit(DETECT_MEMORY):
            return self._process(learn_until, on_identity, also, started)

    def _process(self, learn_until: datetime | None, on_identity: Callable[[int], None] | None,
                 also: Callable[[list[Finding]], None] | None, started: float) -> tuple[RunSummary, list[Finding]]:
        store = self.store
        self._refresh()
        lower = self.judged_batch()
        upper = store.newest_batch()
        learn_until_us = int(learn_until.timestamp() * 1e6) if learn_until else None
        summary = RunSummary()
        findings: list[Finding] = []
        touched: set[str] = set()
        newest = -1
        changes = workload_changes(store.con)
        origins = key_origins(store.con)
        self.principals.runs_as = workload_roles(store.con)
        windows = ([_pending(lower, upper, learn_until_us, True), _pending(lower, upper, learn_until_us, False)]
                   if learn_until_us is not None else [_pending(lower, upper, None, False)])
        prior_last: dict[str, int] = {}  # each identity's newest event before this call
        late: dict[str, int] = {}        # identities whose older history arrived now: its earliest time
        for number, window in enumerate(windows):
            if self.peers is None or number:  # after a learning pass, peers are formed from what it taught
                self.peers = _peer_profiles(self.profiles.iter_all(), self.infos)
            current: str | None = None
            ctx: Context | None = None
            carry: dict = {}
            for identity, events in iter_identity_events(store, window):
                if identity != current:
                    if ctx is not None and current is not None:
                        findings += close_all(carry, ctx)
                        self.profiles.park(current)
                    ctx = self._context(identity, events[0], learn_until_us, changes, origins)
                    current = identity
                    touched.add(identity)
                profile = self.profiles[identity]
                last = prior_last.setdefault(identity, profile.judged)
                if last and events[0].t < last - LATE_US:
                    late[identity] = min(late.get(identity, events[0].t), events[0].t)
                assert ctx is not None  # set when this identity's first batch came
                findings += step(profile, events, ctx, carry)
                for ev in events:
                    if ev.account and ev.account not in self.known_accounts:
                        self.known_accounts = self.known_accounts | {ev.account}
                summary.events += sum(1 for e in events if not e.inbound)
                newest = max(newest, events[-1].t)
                if on_identity:
                    on_identity(len(events))
            if ctx is not None and current is not None:
                findings += close_all(carry, ctx)
                self.profiles.park(current)
        self.profiles.park_all()
        upgrades: list[Finding] = []
        if late:
            findings, upgrades = self._rejudge(late, findings, upper, learn_until_us, changes, origins)
        _commit(store, {i: self.profiles.states[i] for i in touched}, findings, upper, also, upgrades)
        findings += upgrades  # reported like new ones: each is now more severe than what was sent
        summary.identities = len(touched)
        summary.findings = len(findings)
        for finding in findings:
            summary.by_severity[finding.severity] = summary.by_severity.get(finding.severity, 0) + 1
            summary.by_detector[finding.detector] = summary.by_detector.get(finding.detector, 0) + 1
        summary.watermark = datetime.fromtimestamp(newest / 1e6, timezone.utc).isoformat() if newest > 0 else None
        summary.seconds = round(time.perf_counter() - started, 2)
        return summary, findings


def run(store: Store, *, learn_until: datetime | None = None, on_identity: Callable[[int], None] | None = None
        ) -> tuple[RunSummary, list[Finding]]:
    """Process every pending event once; persist profiles, findings and the judged batch together.

    With learn_until, the pending events before it are learned first by every identity (no findings),
    then peer groups are formed, then the rest is judged: a bootstrap from archived history."""
    return DetectSession(store).process(learn_until=learn_until, on_identity=on_identity)


COMMIT_ROWS = 2_000  # profiles and findings inserted per statement: bounded memory for big organisations


def _commit(store: Store, states: dict[str, str | bytes], findings: list[Finding], judged_batch: int,
            also: Callable[[list[Finding]], None] | None = None, upgrades: Sequence[Finding] = ()) -> None:
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        identities = list(states)
        for start in range(0, len(identities), COMMIT_ROWS):
            rows = []
            for identity in identities[start:start + COMMIT_ROWS]:
                text = states[identity]
                state = orjson.loads(text)
                mature = Profile.is_mature(state["n"], state["days"], state["first"], state["last"])
                rows.append((identity, text.decode() if isinstance(text, bytes) else text, state["last"], state["n"],
                             mature))
            batch = pa.table({"identity": [r[0] for r in rows], "state": [r[1] for r in rows],  # noqa: F841
                              "last_event_us": [r[2] for r in rows], "events": [r[3] for r in rows],
                              "mature": [r[4] for r in rows]})
            con.execute("""INSERT OR REPLACE INTO profiles
                           SELECT identity, now(), last_event_us, events, mature, state FROM batch""")
        for start in range(0, len(findings), COMMIT_ROWS):
            part = findings[start:start + COMMIT_ROWS]
            rows = pa.table({  # noqa: F841
                "id": [f.id for f in part], "detector": [f.detector for f in part],
                "severity": [f.severity for f in part], "score": [f.score for f in part],
                "identity": [f.identity["arn"] for f in part],
                "account_id": [f.identity["account_id"] for f in part],
                "first_seen": [f.first_seen for f in part], "last_seen": [f.last_seen for f in part],
                "finding": [orjson.dumps(f.to_dict()).decode() for f in part]})
            con.execute("""INSERT INTO findings (id, detector, severity, score, identity, account_id, first_seen,
                                                 last_seen, status, finding)
                           SELECT id, detector, severity, score, identity, account_id,
                           first_seen, last_seen, 'open', finding FROM rows
                           WHERE id NOT IN (SELECT id FROM findings)""")
        for finding in upgrades:  # judged again with history that arrived late: now more severe
            con.execute("UPDATE findings SET severity = ?, score = ?, finding = ? WHERE id = ?",
                        [finding.severity, finding.score, orjson.dumps(finding.to_dict()).decode(), finding.id])
        con.execute("INSERT OR REPLACE INTO meta VALUES ('detect_judged_batch', ?)", [str(judged_batch)])
        if also is not None:
            also(list(findings) + list(upgrades))
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
