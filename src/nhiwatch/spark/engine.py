"""The per-identity step of the detection engine, as Spark runs it: one identity's rows in, its
findings and its new baseline state out. Pure Python over Arrow, no Spark import here, so it is
the same code the embedded runner calls (`Profile`, `step`, `close_all`, the `Ev` projection)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import duckdb
import orjson
import pyarrow as pa

from nhiwatch.detect.detectors.base import IdentityInfo
from nhiwatch.detect.engine import Context, KeyOrigin, close_all, step
from nhiwatch.detect.profile import Ev, Profile
from nhiwatch.detect.routes import PrincipalIndex
from nhiwatch.detect.runner import (CHUNK_EVENTS, principal_index, EV_ORDER, add_to_peer_group, ev_projection,
                                    fallback_info, key_origins, peer_key, workload_changes,
                                    workload_roles)

# What a group's function returns: one row per finding, and one row holding the identity's state.
OUTPUT_SCHEMA = pa.schema([
    ("kind", pa.string()),        # "finding" or "state"
    ("identity", pa.string()),
    ("id", pa.string()),          # the finding's id; NULL for state rows
    ("detector", pa.string()),
    ("severity", pa.string()),
    ("first_seen", pa.string()),
    ("payload", pa.string()),     # the finding (the contract's JSON) or the profile's state (JSON)
    ("events", pa.int64()),       # state rows: events the profile has seen
    ("mature", pa.bool_()),
    ("last_event_us", pa.int64()),
    ("peer_key", pa.string()),    # state rows: the identity's peer group
])
OUTPUT_DDL = ("kind string, identity string, id string, detector string, severity string, first_seen string, "
              "payload string, events long, mature boolean, last_event_us long, peer_key string")


@dataclass(frozen=True)
class Shared:
    """What every identity's step may know beyond its own events (broadcast to the executors)."""
    infos: dict[str, IdentityInfo]
    known_accounts: frozenset[str]
    peers: dict[str, Profile]
    learn_until_us: int
    changes: dict[str, tuple[tuple[int, str, str], ...]] = field(default_factory=dict)
    key_origins: dict[str, KeyOrigin] = field(default_factory=dict)

    runs_as: dict = field(default_factory=dict)

    @cached_property
    def principals(self) -> PrincipalIndex:
        """Built from the infos where the step runs (once per executor's copy), as the embedded runner does."""
        index = principal_index(self.infos)
        index.runs_as = self.runs_as
        return index


CONTEXT_COLUMNS = ("api", "principal", "principal_type", "principal_account", "account_id", "assumed_session_name",
                   "assumed_role_arn", "request_parameters", "error_code", "event_time", "event_id",
                   "issued_access_key_id", "source_ip", "source_ip_kind", "vpc_endpoint_id", "user_agent")


def workload_context(rows: pa.Table) -> tuple[dict, dict, dict]:
    """Deploys, key origins and the roles functions and instances run as, from the few rows that carry
    them (CONTEXT_ROWS_WHERE plus one row per role), through the embedded runner's own SQL."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("events", rows)
        return workload_changes(con), key_origins(con), workload_roles(con)
    finally:
        con.close()


_connection: duckdb.DuckDBPyConnection | None = None


def _events(rows: pa.Table) -> list[Ev]:
    """The identity's rows as `Ev`s in the engine's order, through the very SQL the embedded runner uses."""
    global _connection
    if _connection is None:
        _connection = duckdb.connect()
        _connection.execute("SET TimeZone = 'UTC'")
    _connection.register("identity_rows", rows)
    try:
        result = _connection.execute(
            f"SELECT identity, inbound, {ev_projection()} FROM identity_rows ORDER BY {EV_ORDER}").fetchall()
    finally:
        _connection.unregister("identity_rows")
    return [Ev(*row) for row in result]


def judge_identity(rows: pa.Table, state: str | None, shared: Shared) -> pa.Table:
    """Learn from and judge one identity's events (rows of one identity, any order), starting from
    `state`; returns its findings and its new state as OUTPUT_SCHEMA rows."""
    events = _events(rows)
    if not events:
        return OUTPUT_SCHEMA.empty_table()
    identity = events[0].identity
    profile = Profile.from_state(orjson.loads(state)) if state else Profile()
    first = events[0]
    known = shared.infos.get(identity)
    info = known or fallback_info(identity, None if first.inbound else first.caller_type, first.account)
    ctx = Context(info, shared.peers.get(peer_key(identity, info.kind, info.account_id)), shared.known_accounts,
                  shared.learn_until_us, changes=shared.changes.get(identity, ()), key_origins=shared.key_origins,
                  principals=shared.principals)
    # The group it counts in, as the embedded runner forms groups: by inventory type, else "unknown".
    group = peer_key(identity, known.kind if known else "unknown", known.account_id if known else None)
    carry: dict = {}
    findings = []
    # The same chunks as the embedded runner: windowed detectors see the same carry boundaries.
    for start in range(0, len(events), CHUNK_EVENTS):
        findings += step(profile, events[start:start + CHUNK_EVENTS], ctx, carry)
    findings += close_all(carry, ctx)
    out: dict[str, list] = {name: [] for name in OUTPUT_SCHEMA.names}

    def add(**values) -> None:
        for name in OUTPUT_SCHEMA.names:
            out[name].append(values.get(name))

    for finding in findings:
        add(kind="finding", identity=identity, id=finding.id, detector=finding.detector, severity=finding.severity,
            first_seen=finding.first_seen, payload=orjson.dumps(finding.to_dict()).decode())
    add(kind="state", identity=identity, payload=orjson.dumps(profile.to_state()).decode(), events=profile.n,
        mature=profile.mature, last_event_us=profile.last, peer_key=group)
    return pa.table(out, schema=OUTPUT_SCHEMA)


def peer_profiles(states: list[tuple[str, str]]) -> dict[str, Profile]:
    """Peer groups from (peer key, state) of every identity, as the embedded runner forms them between
    its learning and judging passes."""
    peers: dict[str, Profile] = {}
    for key, text in states:
        add_to_peer_group(peers, key, Profile.from_state(orjson.loads(text)))
    return peers
