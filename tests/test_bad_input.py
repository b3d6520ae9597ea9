"""Bad input: every problem reported with where and why, bad records quarantined, no crash."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from conftest import event_row, ingest
from test_formats import make_event


def quarantine_rows(store) -> list[tuple[str, str, str]]:
    return store.con.execute(
        "SELECT regexp_replace(source_file, '^.*/', ''), locator, reason FROM quarantine ORDER BY 1, 2").fetchall()


def test_truncated_gzip_keeps_the_whole_records_and_quarantines_the_tail(store, tmp_path):
    body = json.dumps({"Records": [make_event(i) for i in range(40)]}, indent=2).encode()
    data = gzip.compress(body)
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: int(len(data) * 0.6)])
    summary = ingest(store, path)
    outcome = summary.per_file[0]
    assert outcome["error"].startswith("truncated gzip")
    assert 0 < outcome["accepted"] < 40
    assert outcome["quarantined"] == 1
    (name, locator, reason), = quarantine_rows(store)
    assert locator == f"$.Records[{outcome['accepted']}]" and reason.startswith("damaged record")
    assert summary.files_with_errors == 1


def test_garbled_record_in_the_middle_is_quarantined_and_the_rest_recovered(store, tmp_path):
    events = [make_event(i) for i in range(5)]
    text = json.dumps({"Records": events}, indent=2)
    target = text.rindex('"eventName": "GetObject"', 0, text.index(events[2]["eventID"]))
    garbled = text[:target] + '"eventName": GetObj%%ect' + text[target + len('"eventName": "GetObject"'):]
    (tmp_path / "garbled.json").write_text(garbled)
    summary = ingest(store, tmp_path / "garbled.json")
    assert summary.accepted == 4 and summary.quarantined == 1
    assert "malformed JSON" in summary.per_file[0]["error"]
    (_, locator, reason), = quarantine_rows(store)
    assert locator == "$.Records[2]" and reason.startswith("damaged record")
    raw = store.con.execute("SELECT raw FROM quarantine").fetchone()[0]
    assert "GetObj%%ect" in raw


def test_malformed_lines_empty_and_foreign_files(store, tmp_path):
    lines = [json.dumps(make_event(1)), '{"eventVersion": "1.08", "eventTime": ', json.dumps(make_event(2)), "[1, 2"]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "empty.json.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "config.json").write_text(json.dumps({"name": "not cloudtrail", "items": [1, 2]}))
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02\xff" * 10)
    summary = ingest(store, tmp_path)
    per = {Path(f["path"]).name: f for f in summary.per_file}
    assert (per["events.jsonl"]["accepted"], per["events.jsonl"]["quarantined"]) == (2, 2)
    assert per["empty.json"]["skipped"] == "empty file"
    assert per["empty.json.gz"]["skipped"] == "empty file"
    assert per["config.json"]["skipped"].startswith("not CloudTrail: JSON object without a CloudTrail record")
    assert per["notes.txt"]["skipped"] == "not JSON"
    assert per["blob.bin"]["skipped"] == "binary, not JSON"
    rows = quarantine_rows(store)
    assert [r[1] for r in rows] == ["line 2", "line 4"]
    assert all(r[2].startswith("malformed JSON: ") for r in rows)


def test_wrong_types_and_odd_timestamps(store, tmp_path):
    events = {
        "epoch": make_event(1, eventTime=1772359200),
        "offset": make_event(2, eventTime="2026-03-01T21:00:00+11:00"),
        "nanos": make_event(3, eventTime="2026-03-01 10:00:00.123456789"),
        "future": make_event(4, eventTime="2099-01-01T00:00:00Z"),
        "bigint": make_event(5, requestParameters={"size": 123456789012345678901234567890}),
        "null_time": make_event(6, eventTime=None),
        "bool_time": make_event(7, eventTime=True),
        "dict_time": make_event(8, eventTime={"t": 1}),
        "garbage_time": make_event(9, eventTime="yesterday"),
        "bad_identity": make_event(10, userIdentity="alice"),
        "bad_source": make_event(11, eventSource=42),
        "no_name": make_event(12, eventName=""),
    }
    body = "[" + ",".join(json.dumps(e) for e in events.values()) + ", 17, \"text\"]"
    (tmp_path / "types.json").write_text(body)
    summary = ingest(store, tmp_path)
    assert (summary.accepted, summary.quarantined) == (5, 9)
    as_text = {k: event_row(store, events[k]["eventID"])["event_time"] for k in ("epoch", "offset", "nanos")}
    assert as_text == {"epoch": "2026-03-01T10:00:00.000000Z", "offset": "2026-03-01T10:00:00.000000Z",
                       "nanos": "2026-03-01T10:00:00.123456Z"}
    assert "time_in_future" in event_row(store, events["future"]["eventID"])["quality"]
    assert json.loads(event_row(store, events["bigint"]["eventID"])["request_parameters"])["size"] > 1e29
    reasons = {r[1]: r[2] for r in quarantine_rows(store)}
    assert reasons == {
        "$[5]": "eventTime is missing",
        "$[6]": "eventTime is a boolean: True",
        "$[7]": "eventTime is a dict, not a string",
        "$[8]": "eventTime not understood: 'yesterday'",
        "$[9]": "userIdentity is a str, not an object",
        "$[10]": "eventSource is missing or not a string",
        "$[11]": "eventName is missing or not a string",
        "$[12]": "a int where a record was expected",
        "$[13]": "a string that is not JSON where a record was expected",
    }


def test_quarantine_is_idempotent_too(store, tmp_path):
    (tmp_path / "bad.jsonl").write_text(json.dumps(make_event(1)) + "\n{broken\n")
    first = ingest(store, tmp_path)
    second = ingest(store, tmp_path)
    assert (first.accepted, first.quarantined) == (1, 1)
    assert (second.accepted, second.duplicate, second.quarantined) == (0, 1, 1)
    assert store.con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 1


def test_large_json_lines_files_are_streamed(store, tmp_path, monkeypatch):
    from nhiwatch.ingest import formats

    monkeypatch.setattr(formats, "STREAM_BYTES", 1000)
    lines = [json.dumps(make_event(i)) for i in range(30)]
    lines[7] = lines[7][:50]
    (tmp_path / "big.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    summary = ingest(store, tmp_path / "big.jsonl.gz")
    assert (summary.accepted, summary.quarantined) == (29, 1)
    assert summary.per_file[0]["format"] == "gzip-lines"
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    cut = ingest(store, tmp_path / "cut.jsonl.gz").per_file[0]
    assert cut["error"].startswith("truncated gzip") and 0 < cut["records"] < 30
