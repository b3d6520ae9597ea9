"""Bad input: every problem reported with where and why, bad records quarantined, no crash."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest
from conftest import event_row, ingest
from test_formats import make_event

from nhiwatch.ingest import formats
from nhiwatch.ingest.pipeline import parse_items


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


# -- hostile input: limits, damaged containers, odd names (issue 17) ------------------------------

DEEP = "[" * 10_500 + "]" * 10_500  # 21 KB: past orjson's 1,024 levels and Python's recursion limit


def jsonl(*records: dict | str) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def reasons(store) -> dict[str, str]:
    return {locator: reason for _, locator, reason in quarantine_rows(store)}


def gzip_bomb(prefix: bytes, inflated: int, fill: bytes = b"\0") -> bytes:
    """A gzip member holding `prefix` and then `inflated` bytes of `fill`, built in milliseconds: a
    deflate run compressed once after a full flush is self-contained, so it is repeated as is. The
    trailer's check is left zero: reading must stop long before it."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
    unit = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = unit.compress(fill * (1 << 20)) + unit.flush(zlib.Z_FULL_FLUSH)
    body = head + block * (inflated >> 20) + b"\x03\x00"  # an empty final block ends the stream
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + b"\0" * 8


def run_cli(*args: str, home: Path) -> tuple[subprocess.CompletedProcess, int]:
    """The real CLI in a subprocess: (result, its peak resident memory in MB)."""
    # The program's own high-water mark (VmHWM). Not ru_maxrss: Linux carries a parent's peak into a
    # child's across fork and exec, so it reported the test process's size (large after the Spark or
    # simulation tests) instead of the CLI's.
    code = ("import resource, runpy, sys; sys.argv = ['nhiwatch'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('nhiwatch', run_name='__main__')\n"
            "finally:\n"
            "    try:\n"
            "        peak = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1])\n"
            "    except (OSError, StopIteration):  # no /proc: what getrusage says\n"
            "        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "    sys.stderr.write('\\nPEAK_RSS_KB=%d\\n' % peak)\n")
    env = {k: v for k, v in os.environ.items() if k != "NHIWATCH_HOME"}
    result = subprocess.run([sys.executable, "-c", code, *args, "--home", str(home)], capture_output=True,
                            text=True, env=env, timeout=300)
    peak = int(result.stderr.rsplit("PEAK_RSS_KB=", 1)[1].split()[0]) // 1024
    return result, peak


def test_a_record_nested_past_every_parser_is_quarantined_and_its_file_kept(store, tmp_path):
    good = [make_event(i) for i in range(320)]
    (tmp_path / "deep.jsonl").write_bytes(jsonl(*good[:160], DEEP, *good[160:]))
    summary = ingest(store, tmp_path / "deep.jsonl")
    outcome, = summary.per_file
    assert (outcome["accepted"], outcome["quarantined"], outcome["error"]) == (320, 1, None)
    assert reasons(store) == {"line 161": "nested deeper than 128 levels (the limit for one JSON value)"}
    assert len(store.con.execute("SELECT raw FROM quarantine").fetchone()[0]) == 21_000

    # the same in an S3 object (one document), and a record only 200 deep, which orjson does parse
    records = ",".join(json.dumps(e) for e in good[:50])
    shallow = make_event(900, requestParameters=json.loads("[" * 200 + "]" * 200))
    body = '{"Records": [' + records + "," + DEEP + "," + json.dumps(shallow) + "]}"
    (tmp_path / "trail.json.gz").write_bytes(gzip.compress(body.encode()))
    summary = ingest(store, tmp_path / "trail.json.gz")
    outcome, = summary.per_file
    assert (outcome["records"], outcome["duplicate"], outcome["quarantined"], outcome["error"]) == (52, 50, 2, None)
    assert reasons(store)["$.Records[50]"] == "nested deeper than 128 levels (the limit for one JSON value)"
    assert reasons(store)["$.Records[51]"] == "nested deeper than 64 levels (the limit for one record)"


def test_huge_records_and_objects_are_quarantined_by_named_limits(store, tmp_path):
    huge_string = make_event(900, userAgent="A" * (10 << 20))
    many_keys = make_event(901, requestParameters={f"k{i}": i for i in range(100_000)})
    good = [make_event(i) for i in range(30)]
    (tmp_path / "lines.jsonl").write_bytes(jsonl(*good[:10], huge_string, *good[10:20], many_keys, *good[20:]))
    (tmp_path / "doc.json").write_text(json.dumps({"Records": [make_event(i) for i in range(100, 120)]
                                                   + [huge_string, many_keys]}))
    summary = ingest(store, tmp_path)
    per = {Path(f["path"]).name: f for f in summary.per_file}
    lines, doc = per["lines.jsonl"], per["doc.json"]
    assert (lines["accepted"], lines["quarantined"], lines["error"]) == (30, 2, None)
    assert (doc["accepted"], doc["quarantined"], doc["error"]) == (20, 2, None)
    size = len(json.dumps(huge_string, separators=(",", ":")))
    assert reasons(store) == {
        "line 11": f"a record of {size:,} bytes, over the 2 MiB limit for one record",
        "line 22": "an object with 100,000 keys, over the limit of 10,000 keys in one object",
        "$.Records[20]": f"a record of {size:,} bytes, over the 2 MiB limit for one record",
        "$.Records[21]": "an object with 100,000 keys, over the limit of 10,000 keys in one object",
    }
    raws = [r[0] for r in store.con.execute("SELECT raw FROM quarantine").fetchall()]
    assert max(len(r) for r in raws) < formats.MAX_RAW_KEPT + 100  # kept clipped


@pytest.mark.parametrize("streamed", [False, True])
def test_a_line_over_the_line_limit_is_never_held_whole(store, tmp_path, monkeypatch, streamed):
    monkeypatch.setattr(formats, "MAX_LINE_BYTES", 64 << 10)
    if streamed:
        monkeypatch.setattr(formats, "STREAM_BYTES", 1000)
    body = jsonl(*[make_event(i) for i in range(5)], "[" + "1," * 100_000 + "1]", make_event(5))
    (tmp_path / "long.jsonl.gz").write_bytes(gzip.compress(body))
    outcome, = ingest(store, tmp_path / "long.jsonl.gz").per_file
    assert outcome["format"] == "gzip-lines"
    assert (outcome["accepted"], outcome["quarantined"], outcome["error"]) == (6, 1, None)
    assert reasons(store) == {"line 6": "a line of 200,003 bytes, over the 64 KiB limit for one line"}


def test_a_gzip_bomb_is_stopped_by_the_ratio_limit_with_memory_bounded(tmp_path):
    good = jsonl(*[make_event(i) for i in range(50)])
    bomb = gzip_bomb(good, 10 << 30)  # 10 MB that inflate to 10 GB
    nested = gzip.compress(bomb, 9)   # 26 KB: the same, compressed once more
    assert len(bomb) < 11 << 20 and len(nested) < 32 << 10
    for name, data in (("bomb.json.gz", bomb), ("nested.json.gz", nested)):
        folder = tmp_path / name.split(".")[0]
        folder.mkdir()
        (folder / name).write_bytes(data)
        result, peak_mb = run_cli("ingest", str(folder), "--json", home=tmp_path / f"home-{name}")
        assert result.returncode == 3, result.stderr  # a file with an error
        assert "Traceback" not in result.stderr
        outcome, = json.loads(result.stdout)["files_detail"]
        assert outcome["error"].startswith("gzip bomb: ")
        assert "over the 250:1 limit on the inflation ratio" in outcome["error"]
        inflated = int(outcome["error"].split()[2].replace(",", ""))
        assert inflated < formats.RATIO_FLOOR + (2 << 20)  # stopped just past the floor, never 10 GB
        assert (outcome["accepted"], outcome["quarantined"]) == (50, 1)  # the records before it are kept
        assert peak_mb < 600, f"peak memory {peak_mb} MB"


def test_a_gzip_bomb_is_stopped_in_a_streamed_file_too(store, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "STREAM_BYTES", 1000)
    (tmp_path / "flood.jsonl.gz").write_bytes(gzip_bomb(jsonl(*[make_event(i) for i in range(20)]), 4 << 30, b" "))
    outcome, = ingest(store, tmp_path / "flood.jsonl.gz").per_file
    assert outcome["format"] == "gzip-lines"
    assert outcome["error"].startswith("gzip bomb: ")
    assert (outcome["accepted"], outcome["quarantined"]) == (20, 0)  # the flood is blank: nothing to quarantine


def test_the_limit_on_what_one_file_may_hold_in_memory(store, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "MAX_WHOLE_BYTES", 64 << 10)
    body = jsonl(*[make_event(i) for i in range(100)])
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(body))
    (tmp_path / "b.json").write_bytes(body)
    summary = ingest(store, tmp_path)
    per = {Path(f["path"]).name: f for f in summary.per_file}
    kept = body[: 64 << 10].count(b"\n")
    assert per["a.jsonl.gz"]["error"] == ("inflates to more than 64 KiB, the limit for one file held in memory: "
                                          "read up to there")
    assert (per["a.jsonl.gz"]["accepted"], per["a.jsonl.gz"]["quarantined"]) == (kept, 1)  # the cut line
    assert per["b.json"]["error"] == (f"too large to read whole: {len(body):,} bytes, over the 64 KiB limit "
                                      "for a file that is not JSON lines")
    assert per["b.json"]["records"] == 0


def test_a_damaged_gzip_keeps_every_record_that_decompresses(store, tmp_path):
    body = json.dumps({"Records": [make_event(i) for i in range(200)]}, indent=2).encode()
    packed = gzip.compress(body, mtime=0)
    crc = bytearray(packed)
    crc[-6] ^= 0x01  # one bit of the CRC in the trailer
    middle = bytearray(packed)
    middle[len(middle) * 9 // 10] ^= 0x10  # one bit of a deflate block near the end
    header = bytearray(packed)
    header[3] |= 0x20  # a reserved header flag
    for name, data in (("crc.json.gz", crc), ("middle.json.gz", middle), ("header.json.gz", header)):
        (tmp_path / name).write_bytes(bytes(data))
    summary = ingest(store, tmp_path)
    per = {Path(f["path"]).name: f for f in summary.per_file}
    assert per["crc.json.gz"]["error"] == (f"corrupt gzip data (incorrect data check): all {len(body):,} bytes "
                                           "decompressed but fail the check, so some may be wrong")
    assert (per["crc.json.gz"]["accepted"], per["crc.json.gz"]["quarantined"]) == (200, 0)
    assert per["header.json.gz"]["error"] == ("damaged gzip header (unknown header flags set): the data after it is "
                                              "whole (its check matches)")
    assert per["header.json.gz"]["duplicate"] == 200
    damaged = per["middle.json.gz"]
    assert damaged["error"].startswith("corrupt gzip data (")
    assert damaged["records"] == 200 and 150 <= damaged["duplicate"] < 200  # the records before the damage
    assert damaged["quarantined"] == 200 - damaged["duplicate"]
    assert summary.files_with_errors == 3


def test_damage_in_the_deflate_data_keeps_exactly_the_output_before_it():
    first, second = jsonl(*[make_event(i) for i in range(100)]), jsonl(*[make_event(i) for i in range(100, 200)])
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    head = packer.compress(first) + packer.flush(zlib.Z_FULL_FLUSH)  # byte-aligned: the next block starts here
    tail = bytearray(packer.compress(second) + packer.flush())
    tail[0] = 0x06  # that block's header now says block type 3, which does not exist
    data, problem = formats.gunzip(head + bytes(tail))
    assert data == first
    assert problem == (f"corrupt gzip data (invalid block type): kept the {len(first):,} bytes that decompressed "
                       "before the damage")


def test_files_that_are_not_what_their_names_say_are_errors(tmp_path):
    packed = bytearray(gzip.compress(jsonl(make_event(1))))
    packed[0] = 0x00  # the magic number itself is damaged: not recognisable as gzip
    files = {
        "random.json.gz": os.urandom(4096),
        "magic.json.gz": bytes(packed),
        "words.json": b"hello, this is not json\n",
        "words.jsonl": b"\xff\xfe binary \x00 junk",
        "plain.gz": b"plain text named as gzip\n",
        "gz-text.json.gz": gzip.compress(b"some log line\n"),
        "app.log.gz": gzip.compress(b"some log line\n"),  # what its name says: skipped, not an error
        "notes.txt": b"hello\n",
        "good.json": json.dumps({"Records": [make_event(1)]}).encode(),
    }
    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    result, _ = run_cli("ingest", str(folder), "--json", home=tmp_path / "home")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    per = {Path(f["path"]).name: f for f in report["files_detail"]}
    assert per["random.json.gz"]["error"] == "not JSON: the name ends .json.gz but the content is binary data"
    assert per["magic.json.gz"]["error"] == "not JSON: the name ends .json.gz but the content is binary data"
    assert per["words.json"]["error"] == "not JSON: the name ends .json but the content is text that is not JSON"
    assert per["words.jsonl"]["error"] == "not JSON: the name ends .jsonl but the content is binary data"
    assert per["plain.gz"]["error"] == "not gzip: the name ends .gz but the content is text"
    assert per["gz-text.json.gz"]["error"] == ("not JSON: the name ends .json.gz but the content inside the gzip "
                                               "is text that is not JSON")
    assert (per["app.log.gz"]["skipped"], per["app.log.gz"]["error"]) == ("not JSON", None)
    assert (per["notes.txt"]["skipped"], per["notes.txt"]["error"]) == ("not JSON", None)
    assert per["good.json"]["accepted"] == 1
    assert report["files_with_errors"] == 6 and report["quarantined"] == 6  # each kept in quarantine, with the reason


def test_file_names_that_are_not_utf8(store, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    raw_name = os.fsencode(folder) + b"/trail-\xff\xfe.json"
    with open(raw_name, "wb") as fh:
        fh.write(json.dumps({"Records": [make_event(1), make_event(2)]}).encode())
    first = ingest(store, folder)
    second = ingest(store, os.fsdecode(raw_name))  # named directly, as a command line would
    assert (first.accepted, first.files_with_errors) == (2, 0)
    assert (second.accepted, second.duplicate) == (0, 2)  # the same file, recognised
    stored, = {row[0] for row in store.con.execute("SELECT DISTINCT source_file FROM events").fetchall()}
    assert stored == f"{folder}/trail-\\xff\\xfe.json"
    assert first.per_file[0]["path"] == second.per_file[0]["path"] == stored


def test_symlinked_folders_are_followed_once_and_loops_and_broken_links_reported(store, tmp_path):
    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    (data / "real" / "a.json").write_text(json.dumps({"Records": [make_event(1), make_event(2)]}))
    top = tmp_path / "in"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "b.json").write_text(json.dumps({"Records": [make_event(3)]}))
    (top / "linked").symlink_to(data / "real")   # followed
    (top / "again").symlink_to(data / "real")    # the same folder a second way: read once
    (top / "sub" / "loop").symlink_to(top)       # a loop back to the top
    (top / "gone.json").symlink_to(tmp_path / "nowhere.json")  # broken
    summary = ingest(store, top)
    per = {Path(f["path"]).relative_to(top).as_posix(): f for f in summary.per_file}
    assert summary.accepted == 3
    assert per["again/a.json" if "again/a.json" in per else "linked/a.json"]["accepted"] == 2
    linked_twice = per["linked" if "linked" in per else "again"]
    assert linked_twice["skipped"] == f"folder read already by another way (a symbolic link): {data / 'real'}"
    assert per["sub/loop"]["skipped"] == f"symbolic link loop: it points back to {top}, a folder it is in"
    assert per["gone.json"]["error"] == ("broken symbolic link (No such file or directory): it points to "
                                         f"{tmp_path / 'nowhere.json'}")
    assert summary.skipped_reasons == {"folder read already by another way (a symbolic link)": 1,
                                       "symbolic link loop": 1}
    assert summary.files_with_errors == 1


def test_duplicate_keys_nan_infinity_surrogates_and_control_characters(store, tmp_path):
    lines = [
        json.dumps(make_event(1))[:-1] + ', "eventName": "DeleteBucket"}',  # duplicate key: the last wins
        json.dumps(make_event(2, requestParameters={"a": float("nan"), "b": float("inf"), "c": 1}))
        .replace('"c": 1', '"c": 1e400'),                                   # NaN, Infinity, an overflow
        json.dumps(make_event(3, eventTime=float("nan"))),                  # NaN where a time must be
        json.dumps(make_event(4, userAgent="ok\ud800", requestParameters={"k\udc00": "v\udbff"})),
        json.dumps(make_event(5, userAgent="\u001b[31mred\u001b[0m \u0007 [bold]x[/]")),  # data, not markup
        json.dumps(make_event(6)).replace('"GetObject"', '"Get\tObject"'),  # a raw tab inside a string: not JSON
        json.dumps(make_event(7)),
    ]
    (tmp_path / "odd.jsonl").write_text("\n".join(lines) + "\n")
    # the same oddities inside an S3 object: the whole document goes to the lax parser
    (tmp_path / "odd-doc.json").write_text(json.dumps({"Records": [
        make_event(10, requestParameters={"n": float("-inf")}), make_event(11), make_event(12, userAgent="\udfff")]}))
    summary = ingest(store, tmp_path)
    per = {Path(f["path"]).name: f for f in summary.per_file}
    assert (per["odd.jsonl"]["accepted"], per["odd.jsonl"]["quarantined"]) == (5, 2)
    doc = per["odd-doc.json"]
    assert (doc["accepted"], doc["quarantined"], doc["error"]) == (3, 0, None)
    rows = reasons(store)
    assert rows["line 3"] == "eventTime is missing"  # NaN is read as null, never as a float
    assert rows["line 6"].startswith("malformed JSON: ")
    row = event_row(store, make_event(1)["eventID"])
    assert row["event_name"] == "DeleteBucket" and "repaired_values" not in row["quality"]
    row = event_row(store, make_event(2)["eventID"])
    assert json.loads(row["request_parameters"]) == {"a": None, "b": None, "c": None}
    assert "repaired_values" in row["quality"]
    row = event_row(store, make_event(4)["eventID"])
    assert row["user_agent"] == "ok\ufffd" and json.loads(row["request_parameters"]) == {"k\ufffd": "v\ufffd"}
    assert "repaired_values" in row["quality"]
    assert event_row(store, make_event(5)["eventID"])["user_agent"] == "\x1b[31mred\x1b[0m \x07 [bold]x[/]"
    assert "repaired_values" not in event_row(store, make_event(7)["eventID"])["quality"]
    assert "repaired_values" in event_row(store, make_event(10)["eventID"])["quality"]
    assert "repaired_values" not in event_row(store, make_event(11)["eventID"])["quality"]  # only what was repaired
    assert event_row(store, make_event(12)["eventID"])["user_agent"] == "\ufffd"


def test_watch_items_with_hostile_bodies_are_quarantined_not_fatal():
    """parse_items is what `watch` runs on every S3 object, SQS-carried event and intake body."""
    good = [make_event(i) for i in range(20)]
    s3_object = gzip.compress(('{"Records": [' + ",".join(json.dumps(e) for e in good) + "," + DEEP + "]}").encode())
    entries = [
        ("s3://trail/AWSLogs/123456789012/CloudTrail/eu-west-1/2026/03/01/x.json.gz", "k1", s3_object, None),
        ("intake:test", "k2", DEEP.encode(), None),
        ("intake:test", "k3", json.dumps(make_event(50, userAgent="A" * (3 << 20))).encode(), None),
        ("intake:test", "k4", b"\x00\x01 not json", None),
        ("s3://trail/x.json.gz", "k5", gzip_bomb(b"", 1 << 30), None),
    ]
    table, bad, infos = parse_items(entries, now=2**62)
    assert table.num_rows == 20
    got = [(info[1], info[2], info[3]) for info in infos]  # (quarantined, first reason, events)
    assert got[0] == (1, "nested deeper than 128 levels (the limit for one JSON value)", 20)
    assert got[1] == (1, "nested deeper than 128 levels (the limit for one JSON value)", 0)
    assert got[2][0] == 1 and got[2][1].endswith("over the 2 MiB limit for one record")
    assert got[3] == (1, "binary, not JSON", 0)
    assert got[4][0] == 1 and got[4][1].startswith("gzip bomb: ")
    assert infos[4][0].error.startswith("gzip bomb: ")


def test_the_intake_answers_hostile_posts_and_keeps_running(tmp_path):
    from nhiwatch.store.db import Store
    from nhiwatch.watch.config import WatchConfig
    from nhiwatch.watch.sources import IntakeConfig
    from nhiwatch.watch.watcher import Watcher

    secret = "s3cret-s3cret-s3cret"
    config = WatchConfig(sources=[IntakeConfig(name="intake:test", listen="127.0.0.1:0", secret=secret,
                                               header="X-Nhiwatch-Secret", max_body_bytes=8 << 20)])
    with Store(tmp_path / "home") as store:
        watcher = Watcher(store, config, log=lambda *a, **k: None)
        watcher.workers = 1
        thread = threading.Thread(target=watcher.run, kwargs={"max_seconds": 120}, daemon=True)
        thread.start()
        try:
            for _ in range(200):
                if watcher.intakes and watcher.intakes[0].thread.is_alive():
                    break
                threading.Event().wait(0.05)
            url = f"http://{watcher.intakes[0].address}/events"

            def post(body: bytes) -> tuple[int, dict]:
                request = urllib.request.Request(url, data=body, method="POST", headers={"X-Nhiwatch-Secret": secret})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        return response.status, json.loads(response.read())
                except urllib.error.HTTPError as exc:
                    return exc.code, json.loads(exc.read())

            status, answer = post(DEEP.encode())
            assert (status, answer["error"]) == (400, "nested deeper than 128 levels (the limit for one JSON value)")
            many = make_event(1, requestParameters={str(i): i for i in range(20_000)})
            status, answer = post(json.dumps(many).encode())
            assert (status, answer["error"]) == (400, "an object with 20,000 keys, over the limit of 10,000 keys "
                                                      "in one object")
            status, answer = post(json.dumps(make_event(2, userAgent="A" * (3 << 20))).encode())
            assert status == 400 and answer["error"].endswith("over the 2 MiB limit for one record")
            status, answer = post(b"\x1b[31m not json at all")
            assert (status, answer["error"]) == (400, "not JSON")
            host, port = watcher.intakes[0].address.split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=60)
            connection.putrequest("POST", "/events")
            connection.putheader("X-Nhiwatch-Secret", secret)
            connection.putheader("Content-Length", str(9 << 20))
            connection.endheaders()  # refused on its length, before a byte of the body is read
            assert connection.getresponse().status == 413
            connection.close()
            status, answer = post(json.dumps(make_event(3)).encode())
            assert (status, answer["events"]) == (200, 1)
            assert thread.is_alive()
        finally:
            watcher.stop()
            thread.join(60)
        assert not thread.is_alive()
        assert store.con.execute("SELECT count(*) FROM events").fetchone()[0] == 1
        assert store.con.execute("SELECT count(*) FROM quarantine WHERE source_file = 'intake:intake:test'"
                                 ).fetchone()[0] == 4


def test_an_unexpected_failure_costs_its_file_not_the_run(store, tmp_path, monkeypatch):
    (tmp_path / "a.json").write_text(json.dumps({"Records": [make_event(1)]}))
    (tmp_path / "b.json").write_text(json.dumps({"Records": [make_event(2)]}))
    unwrap = formats.FileScanner._unwrap

    def failing(self, value, *args):
        if self.display.endswith("b.json"):
            raise KeyError("a reader bug")
        return unwrap(self, value, *args)

    monkeypatch.setattr(formats.FileScanner, "_unwrap", failing)
    summary = ingest(store, tmp_path)
    per = {Path(f["path"]).name: f for f in summary.per_file}
    assert per["a.json"]["accepted"] == 1
    assert per["b.json"]["error"] == "reading stopped by an internal error: KeyError: 'a reader bug'"
    assert summary.files_with_errors == 1
