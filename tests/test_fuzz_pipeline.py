"""Property-based fuzzing of the whole pipeline (issue 17): CloudTrail-shaped records whose strings may be
hostile (controls, markup, surrogates, huge, any Unicode) and whose fields may be missing or of the wrong
type, serialized in any of the shapes CloudTrail arrives in, maybe gzipped, maybe damaged byte by byte;
then ingest -> detection -> correlation -> every terminal view and the OCSF / ASFF converters, in process.

Invariants: nothing raises; each file's records are stored, counted as duplicates (explained) or
quarantined with a reason; terminal text holds no control character but the line break; OCSF and ASFF
are valid JSON within Security Hub's field limits."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import tempfile
from pathlib import Path

import orjson
import typer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nhiwatch.cli import app as cli_app, ingest as cli_ingest
from nhiwatch.cli import correlate as cli_correlate
from nhiwatch.cli import detect as cli_detect
from nhiwatch.cli import respond as cli_respond
from nhiwatch.cli.safe_text import SafeConsole
from nhiwatch.correlate.incidents import list_incidents
from nhiwatch.pipeline import analyze
from nhiwatch.detect.findings_store import list_findings
from nhiwatch.ingest.formats import RATIO_FLOOR
from nhiwatch.ingest.pipeline import Ingestor, parse_items
from nhiwatch.outputs.asff import to_asff
from nhiwatch.outputs.ocsf import to_ocsf
from nhiwatch.store.db import Store
from test_formats import make_event

ACCOUNT = "123456789012"
# Pieces an attacker writes into CloudTrail: markup, emoji codes, escape sequences (CSI, OSC 8, window
# title, 8-bit CSI), controls, bidi and zero-width characters, a BOM, lone surrogates, HTML, format strings.
FRAGMENTS = ("[/]", "[bold red]", "[/bold]", "[link=http://e]", ":secret:", ":smile:", "\x1b[31m", "\x1b[2J",
             "\x1b]8;;http://evil.example/\x1b\\", "\x1b]0;title\x07", "\x9b31m", "\x85", "\r", "\b", "\x00", "\x7f",
             "\t", "\n", "\u202e", "\u2066", "\u200b", "\ufeff", "\u2028", "\ud800", "\udfff", "<script>", "%s",
             "{0}", "'\"", "\\", "/", ":", "*", "%", "_", "arn:aws:iam::123456789012:role/x", "\U0001f600", "ﷺ")
hostile_text = st.one_of(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(st.characters(exclude_categories=()), max_size=6)),
             max_size=6).map("".join),
    # huge: over and under the 2 MiB limit for one record (kept rare: each costs a few MB)
    st.sampled_from(["A" * 5000, "\x1b[31m" * 40_000, "é" * ((1 << 20) + 1)]),
)
wrong_type = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(0, 9), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    st.integers(65, 140).map(lambda depth: json.loads("[" * depth + "]" * depth)),  # past the record's depth limit
)
value = st.one_of(hostile_text, hostile_text, wrong_type)

# Where the strings of a record are (nested keys as paths)
FIELDS = (
    "eventVersion", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent",
    "errorCode", "errorMessage", "requestID", "eventID", "eventType", "recipientAccountId", "readOnly",
    "managementEvent", "requestParameters", "responseElements", "resources", "vpcEndpointId", "additionalEventData",
    "userIdentity", "userIdentity.type", "userIdentity.arn", "userIdentity.principalId", "userIdentity.accountId",
    "userIdentity.accessKeyId", "userIdentity.userName", "userIdentity.invokedBy", "userIdentity.sessionContext",
    "userIdentity.sessionContext.sessionIssuer.arn", "userIdentity.sessionContext.sessionIssuer.userName",
    "userIdentity.sessionContext.attributes.creationDate", "userIdentity.sessionContext.sourceIdentity",
    "requestParameters.bucketName", "requestParameters.key", "requestParameters.userName",
    "requestParameters.roleArn", "requestParameters.roleSessionName", "requestParameters.secretId",
    "responseElements.credentials.accessKeyId", "responseElements.assumedRoleUser.arn",
)


def templates(i: int) -> list[dict]:
    """Real-shaped records that make detectors speak: an S3 read, an attack tool creating a backdoor user
    and key, a role assumed, a trail stopped, a secret read."""
    user = {"type": "IAMUser", "principalId": "AIDAEXAMPLEUSER", "arn": f"arn:aws:iam::{ACCOUNT}:user/ci-deployer",
            "accountId": ACCOUNT, "accessKeyId": "AKIAEXAMPLEFUZZ00001", "userName": "ci-deployer"}
    common = {"sourceIPAddress": "198.51.100.7", "readOnly": False, "managementEvent": True, "responseElements": None}
    return [
        make_event(i),
        make_event(i, userIdentity=dict(user), eventSource="iam.amazonaws.com", eventName="CreateUser",
                   userAgent="pacu/1.0", requestParameters={"userName": "backdoor"}, **common),
        make_event(i, userIdentity=dict(user), eventSource="iam.amazonaws.com", eventName="CreateAccessKey",
                   userAgent="aws-cli/2.15", requestParameters={"userName": "backdoor"}, **common),
        make_event(i, eventSource="sts.amazonaws.com", eventName="AssumeRole", **dict(common, responseElements={
            "credentials": {"accessKeyId": "ASIAEXAMPLEFUZZ0001", "expiration": "Mar 1, 2026, 11:00:00 AM"},
            "assumedRoleUser": {"arn": f"arn:aws:sts::210987654321:assumed-role/admin/s{i}",
                                "assumedRoleId": "AROAEXAMPLE:s"}}),
                   requestParameters={"roleArn": "arn:aws:iam::210987654321:role/admin", "roleSessionName": f"s{i}"}),
        make_event(i, userIdentity=dict(user), eventSource="cloudtrail.amazonaws.com", eventName="StopLogging",
                   requestParameters={"name": "org-trail"}, **common),
        make_event(i, eventSource="secretsmanager.amazonaws.com", eventName="GetSecretValue",
                   requestParameters={"secretId": f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:db-AbCdEf"}),
    ]


def _set(record: dict, path: str, new: object, delete: bool) -> None:
    *parents, last = path.split(".")
    target: object = record
    for key in parents:
        target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return  # an earlier change gave a parent another type
    if delete:
        target.pop(last, None)
    else:
        target[last] = new


@st.composite
def cloudtrail_records(draw, i: int) -> dict:
    record = templates(i)[draw(st.integers(0, 5))]
    record["eventID"] = f"fuzz-{i:04d}"  # distinct, unless a change below says otherwise
    for path in draw(st.lists(st.sampled_from(FIELDS), max_size=5)):
        _set(record, path, draw(value), draw(st.integers(0, 5)) == 0)
    return record


def _serialize(records: list[dict], shape: str, ascii_only: bool) -> bytes:
    def dumps(value: object) -> str:
        return json.dumps(value, ensure_ascii=ascii_only)  # NaN and Infinity written as JavaScript does

    if shape == "lines":
        text = "".join(dumps(r) + "\n" for r in records)
    elif shape == "array":
        text = "[" + ", ".join(dumps(r) for r in records) + "]"
    elif shape == "eventbridge":
        text = "".join(dumps({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3",
                              "account": ACCOUNT, "region": "eu-west-1", "detail": r}) + "\n" for r in records)
    elif shape == "lookup-events":
        text = dumps({"Events": [{"EventId": str(n), "CloudTrailEvent": dumps(r)} for n, r in enumerate(records)]})
    else:
        text = dumps({"Records": records})
    return text.encode("utf-8", "surrogatepass")  # a raw lone surrogate is bytes that are not UTF-8


def _damage(draw, data: bytes, kind: str) -> bytes:
    at = draw(st.integers(0, max(len(data) - 1, 0)))
    if kind == "truncate":
        return data[:at]
    if kind == "flip" and data:
        return data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1:]
    if kind == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    if kind == "nul":
        return data[:at] + b"\x00" + data[at:]
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    return data


@st.composite
def trail_files(draw) -> dict:
    records = [draw(cloudtrail_records(i)) for i in range(draw(st.integers(1, 8)))]
    shape = draw(st.sampled_from(["lines", "document", "array", "eventbridge", "lookup-events"]))
    data = _serialize(records, shape, draw(st.booleans()))
    plain_size = len(data)
    gzipped = draw(st.booleans())
    kind = draw(st.sampled_from(["none", "truncate", "flip", "insert", "nul", "crlf", "bom"]))
    if kind in ("crlf", "bom"):  # text as some tools write it, then maybe compressed: not damage
        data = _damage(draw, data, kind)
    if gzipped:
        data = gzip.compress(data, 6)
    if kind not in ("crlf", "bom"):  # bytes damaged in the file as stored
        data = _damage(draw, data, kind)
    # the same records again, whole, in another file read first: what the damaged file repeats is explained
    copy = draw(st.booleans()) and shape not in ("eventbridge",)  # an envelope's account changes the identity
    return {"records": records, "shape": shape, "gzipped": gzipped, "damage": kind, "data": data, "copy": copy,
            "plain_size": plain_size}


# Terminal output may hold line breaks and nothing else below U+0020: no C0 or C1 control, no DEL, no bidi
# control, no separator, no lone surrogate (the console escapes them all).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
_CLI_MODULES = (cli_app, cli_ingest, cli_detect, cli_correlate, cli_respond)


@contextlib.contextmanager
def terminal() -> io.StringIO:
    """Every command module's console and error console write into one StringIO (not a terminal: no
    styling codes, so any escape sequence found came from the data)."""
    out = io.StringIO()
    console = SafeConsole(file=out, width=140, color_system=None, force_terminal=False)
    saved = [(module, module.console, getattr(module, "err", None)) for module in _CLI_MODULES]
    for module in _CLI_MODULES:
        module.console = console
        if hasattr(module, "err"):
            module.err = console
    try:
        yield out
    finally:
        for module, console_was, err_was in saved:
            module.console = console_was
            if err_was is not None:
                module.err = err_was


def _outcome_invariants(trail: dict, per_file: dict[str, dict], copy_path: str | None, path: str,
                        quarantine: dict[str, list[str]]) -> None:
    records = trail["records"]
    for name, outcome in per_file.items():
        # every record read is stored, a duplicate or quarantined
        assert outcome["records"] == outcome["accepted"] + outcome["duplicate"] + outcome["quarantined"], outcome
        reasons = quarantine.get(name, [])
        assert len(reasons) == outcome["quarantined"], (outcome, reasons)
        assert all(r.strip() for r in reasons)  # each with a reason
        if outcome["records"] == 0:
            assert outcome["skipped"] or outcome["error"], outcome  # nothing found is always explained
    outcome = per_file[path]
    if (outcome["error"] or "").startswith("gzip bomb: "):
        # a huge run of one character inflates like a bomb: stopped as one, once past the ratio's floor
        assert trail["gzipped"] and trail["plain_size"] > RATIO_FLOOR, outcome
    elif trail["damage"] in ("none", "crlf", "bom"):
        # whole: every record is accounted for (or the file holds no CloudTrail at all and says so)
        assert outcome["records"] == len(records) or (outcome["records"] == 0 and outcome["skipped"]), outcome
        assert outcome["error"] is None, outcome
        if copy_path is not None:
            first = per_file[copy_path]
            assert outcome["accepted"] == 0, (first, outcome)  # everything was in the copy read before it
            assert outcome["duplicate"] == first["accepted"] + first["duplicate"], (first, outcome)
            assert outcome["quarantined"] == first["quarantined"], (first, outcome)
        else:
            ids = [r.get("eventID") for r in records]
            if all(isinstance(i, str) and i.startswith("fuzz-") for i in ids) and len(set(ids)) == len(ids):
                assert outcome["duplicate"] == 0, outcome  # no two records are the same event


def _as_watched_object(trail: dict, outcome: dict) -> None:
    """The same bytes as an S3 object or an intake body (what `watch` reads) give the same records."""
    table, bad, infos = parse_items([("s3://trail/AWSLogs/b-trail.json.gz", "k", trail["data"], None)], 2**62)
    (item, quarantined, reason, events), = infos
    assert len(bad) == quarantined and all(r[2].strip() for r in bad)
    assert (table.num_rows if table is not None else 0) == events
    if quarantined:
        assert reason
    empty = 1 if item.skipped and item.records == 0 else 0  # the watcher keeps a note of an object with nothing
    assert (events, quarantined - empty) == (outcome["accepted"] + outcome["duplicate"], outcome["quarantined"]), (
        item, outcome)


def _assert_plain_terminal_text(text: str) -> None:
    found = _CONTROL.search(text)
    if found is not None:
        around = text[max(found.start() - 200, 0):found.end() + 200]
        raise AssertionError(f"raw {found.group()!r} in terminal output: {around!r}")


def _assert_valid_exports(findings: list[dict]) -> None:
    for finding in findings:
        for converted in (to_ocsf(finding), to_asff(finding, "eu-west-1", ACCOUNT)):
            text = orjson.dumps(converted)  # what the sinks send
            assert json.loads(text) == orjson.loads(text)
            json.dumps(converted, allow_nan=False)  # strict JSON: no NaN or Infinity anywhere
        asff = to_asff(finding, "eu-west-1", ACCOUNT)
        assert len(asff["Title"]) <= 256 and len(asff["Description"]) <= 1024


def _render(home: Path, summary, findings: list[dict], incidents: list[dict], identities: list[str]) -> str:
    with terminal() as out:
        cli_ingest.print_ingest(summary)
        cli_app.quarantine(home=home, limit=100_000, raw=True)
        cli_app.stats(home=home)
        cli_detect.list_findings(min_severity="info", status="all", limit=0, home=home)
        for finding in findings[:4]:
            cli_detect.show_finding(finding["id"], home=home)
        for identity in identities[:4]:
            cli_detect.show_baseline(identity, home=home)
        with Store(home, read_only=True) as store:
            cli_detect.print_summary(cli_detect.summarize(store, new=len(findings), home=home))
        cli_correlate.list_incidents(min_severity="info", status="all", home=home)
        for incident in incidents[:2]:
            cli_correlate.show_incident(incident["id"], home=home)
            try:
                cli_respond.plan(incident["id"], home=home)
            except typer.Exit as exc:  # an incident with nothing to act on is a usage answer, not a crash
                assert exc.exit_code == 2
    return out.getvalue()


# 40 fixed examples (about 30 s) in every run; NHIWATCH_FUZZ_EXAMPLES=2000 searches further, at random.
EXAMPLES = int(os.environ.get("NHIWATCH_FUZZ_EXAMPLES", "40"))


@settings(max_examples=EXAMPLES, deadline=None, derandomize="NHIWATCH_FUZZ_EXAMPLES" not in os.environ, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(trail_files())
def test_hostile_trails_through_ingest_detection_correlation_and_every_view(trail):
    with tempfile.TemporaryDirectory(prefix="nhiwatch-fuzz-") as tmp:
        folder, home = Path(tmp) / "in", Path(tmp) / "home"
        folder.mkdir()
        path = folder / ("b-trail.json.gz" if trail["gzipped"] else "b-trail.json")
        path.write_bytes(trail["data"])
        copy_path = None
        if trail["copy"]:
            copy_path = folder / "a-copy.json.gz"
            copy_path.write_bytes(gzip.compress(_serialize(trail["records"], "document", True)))
        with Store(home) as store:
            summary = Ingestor(store, workers=1).run([str(folder)])
            quarantine: dict[str, list[str]] = {}
            for source, reason in store.con.execute("SELECT source_file, reason FROM quarantine").fetchall():
                quarantine.setdefault(source, []).append(reason)
            stored, distinct = store.con.execute("SELECT count(*), count(DISTINCT uid) FROM events").fetchone()
            assert stored == distinct == summary.accepted
            result = analyze(store, [])  # detection, then correlation
            assert result.problems == []
            _, findings = list_findings(store, min_severity="info", status=None)
            incidents = list_incidents(store, min_severity="info", status=None)
            identities = [i for (i,) in store.con.execute("SELECT identity FROM profiles ORDER BY 1").fetchall()]
        for label in (f"damage: {trail['damage']}", f"findings: {min(len(findings), 3)}+",
                      f"incidents: {bool(incidents)}", f"quarantined: {bool(summary.quarantined)}"):
            event(label)  # what the examples reached (pytest --hypothesis-show-statistics)
        per_file = {Path(f["path"]).name: f for f in summary.per_file}
        quarantine = {Path(k).name: v for k, v in quarantine.items()}
        _outcome_invariants(trail, per_file, copy_path and copy_path.name, path.name, quarantine)
        _as_watched_object(trail, per_file[path.name])
        assert len(findings) == len({f["id"] for f in findings})
        _assert_valid_exports(findings)
        _assert_plain_terminal_text(_render(home, summary, findings, incidents, identities))
