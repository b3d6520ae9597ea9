"""Property-based tests: normalization never crashes, times round-trip, corruption is contained."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nhiwatch.core.event import EVENT_SCHEMA
from nhiwatch.core.times import iso_from_us_exact
from nhiwatch.ingest.formats import FileScanner
from nhiwatch.ingest.normalize import BadRecord, EventBatch, RecordContext
from nhiwatch.ingest.timestamps import parse_event_time
from test_formats import make_event

NOW = 1_800_000_000_000_000
CTX = RecordContext("prop.json", "$", None, None)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)
cloudtrail_keys = st.sampled_from([
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress",
    "userAgent", "requestParameters", "responseElements", "eventID", "readOnly", "eventType", "recipientAccountId",
    "errorCode", "resources", "insightDetails", "serviceEventDetails", "vpcEndpointId", "managementEvent"])
identity_keys = st.sampled_from(["type", "arn", "accountId", "principalId", "userName", "invokedBy",
                                 "accessKeyId", "sessionContext", "identityProvider"])


@st.composite
def mutated_records(draw) -> dict:
    """Real-shaped records whose fields are replaced, removed or retyped at random."""
    record = make_event(draw(st.integers(0, 10_000)))
    for key in draw(st.lists(cloudtrail_keys, max_size=6)):
        if draw(st.booleans()):
            record.pop(key, None)
        else:
            record[key] = draw(json_values)
    identity = record.get("userIdentity")
    if isinstance(identity, dict):
        for key in draw(st.lists(identity_keys, max_size=4)):
            identity[key] = draw(json_values)
    return record


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_records(), min_size=1, max_size=8))
def test_normalize_accepts_or_rejects_with_a_reason_and_never_misaligns(records):
    batch = EventBatch(NOW)
    accepted = 0
    for record in records:
        try:
            batch.add(record, CTX)
            accepted += 1
        except BadRecord as exc:
            assert str(exc)  # a reason, always
    table = batch.to_table()
    assert table.num_rows == accepted == len(batch)
    assert table.schema.equals(EVENT_SCHEMA)
    for name in ("uid", "event_id", "event_time", "event_source", "event_name", "api"):
        assert table.column(name).null_count == 0


@settings(deadline=None)  # correctness, not speed: a busy CI machine must not fail it
@given(st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2150, 1, 1)),
       st.sampled_from(["z", "space", "offset", "nanos", "epoch"]))
def test_event_time_forms_all_mean_the_same_instant(moment, form):
    moment = moment.replace(tzinfo=timezone.utc)
    expected_micros = int((moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1))
    if form == "z":
        value = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    elif form == "space":
        value = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    elif form == "offset":
        value = moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    elif form == "nanos":
        value = moment.strftime("%Y-%m-%d %H:%M:%S.%f") + "789"
    else:
        value = expected_micros / 1_000_000
    micros, _ = parse_event_time(value)
    tolerance = 1 if form == "epoch" else 0  # a float of seconds carries microseconds only approximately
    assert abs(micros - expected_micros) <= tolerance
    assert parse_event_time(iso_from_us_exact(micros))[0] == micros


@settings(deadline=None)  # correctness, not speed: a busy CI machine must not fail it
@given(st.text(max_size=8).filter(lambda s: s.strip()), st.text(min_size=1, max_size=40))
def test_assumed_role_principal_is_the_role_not_the_session(role, session):
    role = role.replace("/", "_").strip() or "r"
    record = make_event(1)
    record["userIdentity"] = {
        "type": "AssumedRole", "arn": f"arn:aws:sts::123456789012:assumed-role/{role}/{session}",
        "accountId": "123456789012", "principalId": f"AROAX:{session}"}
    batch = EventBatch(NOW)
    batch.add(record, CTX)
    row = batch.to_table().to_pylist()[0]
    assert row["principal"] == f"arn:aws:iam::123456789012:role/{role}"
    assert row["session"] == session and row["principal_type"] == "role"


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_corrupted_files_never_crash_and_account_for_every_record(tmp_path_factory, data):
    events = [make_event(i) for i in range(6)]
    raw = json.dumps({"Records": events}, indent=data.draw(st.sampled_from([None, 1]))).encode()
    if data.draw(st.booleans()):
        raw = gzip.compress(raw)
    kind = data.draw(st.sampled_from(["truncate", "flip", "insert", "wrong-type"]))
    cut = data.draw(st.integers(0, len(raw)))
    if kind == "truncate":
        raw = raw[:cut]
    elif kind == "flip":
        raw = raw[:cut] + bytes([data.draw(st.integers(0, 255))]) + raw[cut + 1:]
    elif kind == "insert":
        raw = raw[:cut] + data.draw(st.binary(min_size=1, max_size=20)) + raw[cut:]
    else:
        events[data.draw(st.integers(0, 5))][data.draw(cloudtrail_keys)] = data.draw(json_values)
        raw = json.dumps({"Records": events}).encode()
    path = tmp_path_factory.mktemp("corrupt") / "object.json.gz"
    path.write_bytes(raw)
    scanner = FileScanner(path)
    batch = EventBatch(NOW)
    bad = good = 0
    for item in scanner.records():
        if isinstance(item, tuple):
            try:
                batch.add(*item)
                good += 1
            except BadRecord:
                bad += 1
        else:
            assert item.reason and item.locator
            bad += 1
    outcome = scanner.outcome
    assert outcome.records == good + bad
    assert good <= 6
    assert isinstance(batch.to_table(), pa.Table)
    if good + bad == 0:
        assert outcome.skipped or outcome.error  # nothing found is always explained
