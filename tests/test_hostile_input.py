"""Hostile input through the real command line (issue 17): every kind of bad input in KINDS, written as
files, is read by `ingest` and `analyze`, shown by `baseline show`, `findings list` and `quarantine`,
read from moto's S3 by `watch --once`, and POSTed to the intake of a running `watch`. Each run: no
traceback, no process death, the exit code the README documents, every bad record quarantined with a
reason, the known-good records around it kept (exact counts), and peak memory bounded.

Panther's test events (placeholder key `1111`, shared addresses joining identities) are the one kind
from the issue not built here: tests/test_blast_radius.py runs them through the command line."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import boto3
import pytest

from moto_server import aws_live, moto_endpoint  # noqa: F401
from nhiwatch.store.db import Store
from test_bad_input import DEEP, gzip_bomb
from test_formats import make_event


GOOD_BEFORE, GOOD_AFTER = 3, 3  # known-good records around each bad one
GOOD = GOOD_BEFORE + GOOD_AFTER
MEMORY_LIMIT_MB = 1536
INTAKE_LIMIT = 8 << 20  # the intake's default limit on a body
ESC = "\x1b"
# Markup that crashes Rich ([/]) or styles ([bold]), emoji codes, SGR, an OSC 8 link, a window title, screen
# clearing, carriage return, backspace, NUL, DEL, C1 CSI, a bidi override, a zero-width space, HTML.
HOSTILE = (f"[/] [bold red]x[/] :secret: :smile: {ESC}[31mRED{ESC}[0m {ESC}]8;;http://evil.example/{ESC}\\link"
           f"{ESC}]8;;{ESC}\\ {ESC}]0;pwned\x07 {ESC}[2J a\rb\bc\x00d\x7fe\x9bf \u202eevil\u202c z\u200bw "
           "<script>alert(1)</script>")
# What must never reach a terminal raw (line breaks aside)
RAW_CONTROLS = (ESC, "\x07", "\x08", "\x00", "\x7f", "\x9b", "\r", "\u202e", "\u200b")
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db[/]:smile:-AbCdEf"
HOSTILE_USER = "mallory[/]" + ESC + "[31m"


# -- the kinds of bad input ---------------------------------------------------------------------------

def good(base: int, n: int = GOOD) -> list[dict]:
    return [make_event(base + j) for j in range(n)]


def lines(base: int, *bad: dict | str | bytes, before: int = GOOD_BEFORE, after: int = GOOD_AFTER,
          newline: bytes = b"\n") -> bytes:
    """JSON lines: `before` good records, the bad ones, `after` good records (ids from `base`)."""
    records = good(base, before) + list(bad) + [make_event(base + before + j) for j in range(after)]
    out = []
    for record in records:
        if isinstance(record, bytes):
            out.append(record)
        elif isinstance(record, str):
            out.append(record.encode("utf-8", "surrogatepass"))
        else:
            out.append(json.dumps(record).encode())
    return newline.join(out) + newline


def document(base: int, *bad: dict | str) -> bytes:
    """One S3-object document {"Records": [...]} with the bad records between the good ones."""
    parts = [json.dumps(r) for r in good(base, GOOD_BEFORE)]
    parts += [r if isinstance(r, str) else json.dumps(r) for r in bad]
    parts += [json.dumps(make_event(base + GOOD_BEFORE + j)) for j in range(GOOD_AFTER)]
    return ('{"Records": [' + ", ".join(parts) + "]}").encode()


def every_field_hostile(i: int) -> dict:
    """ANSI escapes and markup in every string field of a record: the record is data and is kept."""
    h = HOSTILE
    record = make_event(i, userAgent=f"evil-agent/{h}", eventName=f"GetObject{h}", awsRegion=f"eu-west-1{h}",
                        sourceIPAddress=f"10.0.0.1{h}", errorCode=f"AccessDenied{h}", errorMessage=f"denied {h}",
                        requestID=f"req{h}", eventType=f"AwsApiCall{h}", vpcEndpointId=f"vpce-{h}",
                        requestParameters={"bucketName": f"bucket{h}", "key": f"key{h}", f"param{h}": h},
                        responseElements={"note": h}, resources=[{"ARN": f"arn:aws:s3:::bucket{h}", "type": h}])
    record["userIdentity"] = {
        "type": "IAMUser", "principalId": f"AIDAEXAMPLE{h}", "arn": f"arn:aws:iam::123456789012:user/{HOSTILE_USER}",
        "accountId": "123456789012", "accessKeyId": "AKIAEXAMPLEHOSTILE01", "userName": HOSTILE_USER,
        "sessionContext": {"attributes": {"creationDate": "2026-03-01T09:00:00Z", "mfaAuthenticated": h}}}
    return record


def hostile_session(i: int) -> dict:
    """The role's session name, client, bucket and key with markup and escapes (the role's baseline shows them)."""
    record = make_event(i, userAgent=f"[bold]aws-cli/2.0 {HOSTILE}",
                        requestParameters={"bucketName": f"[/]bucket[bold]{ESC}[31m", "key": f"[/key{ESC}]0;t\x07"})
    session = f"sess[/]{ESC}[2J"
    record["userIdentity"]["arn"] = f"arn:aws:sts::123456789012:assumed-role/app-server/{session}"
    record["userIdentity"]["principalId"] = f"AROAEXAMPLEROLEID:{session}"
    return record


def attack_calls(i: int) -> list[dict]:
    """The hostile user creates a backdoor user with a key and admin rights, stops a trail, reads a secret, with
    an attack tool: records to keep, and findings whose explanations quote the hostile names."""
    calls = [("iam", "CreateUser", {"userName": f"backdoor{HOSTILE}"}),
             ("iam", "CreateAccessKey", {"userName": f"backdoor{HOSTILE}"}),
             ("iam", "AttachUserPolicy", {"userName": f"backdoor{HOSTILE}",
                                          "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
             ("cloudtrail", "StopLogging", {"name": f"trail{HOSTILE}"}),
             ("secretsmanager", "GetSecretValue", {"secretId": SECRET_ARN})]
    records = []
    for n, (service, name, parameters) in enumerate(calls):
        record = every_field_hostile(i + n)
        record.update(eventSource=f"{service}.amazonaws.com", eventName=name, requestParameters=parameters,
                      awsRegion="eu-west-1", sourceIPAddress="198.51.100.7", userAgent=f"pacu/1.0 {HOSTILE}",
                      readOnly=False, managementEvent=True)
        del record["errorCode"], record["errorMessage"]
        records.append(record)
    return records


def secret_read(i: int) -> dict:
    return make_event(i, eventSource="secretsmanager.amazonaws.com", eventName="GetSecretValue",
                      requestParameters={"secretId": SECRET_ARN},
                      resources=[{"ARN": SECRET_ARN, "accountId": "123456789012"}])


def nested(i: int, depth: int) -> str:
    """A record whose requestParameters nest `depth` levels (as text: Python's own parser would recurse)."""
    return json.dumps(make_event(i, requestParameters="NEST")).replace('"NEST"', "[" * depth + "]" * depth)


def wrapped_in_strings(record: dict, times: int) -> dict:
    """The record as a JSON string in a collector's "message", that one in another's, `times` over."""
    value: dict = record
    for _ in range(times):
        value = {"message": json.dumps(value)}
    return value


def eventbridge(record: dict) -> dict:
    return {"version": "0", "id": HOSTILE, "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3",
            "account": "123456789012", "time": record["eventTime"], "region": "eu-west-1", "resources": [HOSTILE],
            "detail": record}


def truncated_document(base: int) -> bytes:
    """A document cut inside its fourth record: three whole records, a damaged one."""
    text = document(base).decode()
    return text[: text.index(make_event(base + 3)["eventID"])].encode()


def truncated_gzip(base: int) -> bytes:
    """Three records, a full flush (a point decompression can reach), then 200 bytes of the rest: the
    output stops inside the fourth record."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    head = packer.compress(lines(base, after=0)) + packer.flush(zlib.Z_FULL_FLUSH)
    rest = packer.compress(lines(base + GOOD_BEFORE, before=GOOD_AFTER, after=0)) + packer.flush()
    return head + rest[:200]


def deflate_damage(base: int) -> bytes:
    """Three records, a full flush, then a block whose header names block type 3, which does not exist."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    head = packer.compress(lines(base, after=0)) + packer.flush(zlib.Z_FULL_FLUSH)
    tail = bytearray(packer.compress(lines(base + GOOD_BEFORE, before=GOOD_AFTER, after=0)) + packer.flush())
    tail[0] = 0x06
    return head + bytes(tail)


def flip(data: bytes, index: int, bit: int) -> bytes:
    out = bytearray(data)
    out[index] ^= bit
    return bytes(out)


@dataclass(frozen=True)
class Kind:
    name: str
    expect: str                          # what must happen, in words
    file: str | bytes                    # path in the corpus (bytes: a name that is not UTF-8)
    build: Callable[[int], bytes] | None  # the file's content from the first good record's number
    accepted: int                        # records stored from the file, exactly
    quarantined: int = 0                 # records quarantined from it, exactly, each with a reason
    reason: str = ""                     # every quarantine reason of the file contains this
    error: str = ""                      # the file's error starts with this ("": no error)
    skipped: str = ""                    # the file is skipped for a reason starting with this
    link: str | None = None              # a symbolic link: what it points to (relative to the corpus)

    @property
    def s3(self) -> bool:
        """Also uploaded to S3 and POSTed to the intake (links and names S3 cannot hold are files only)."""
        return self.build is not None and self.link is None and isinstance(self.file, str)


DEEP_REASON = "nested deeper than 128 levels (the limit for one JSON value)"
OVER_SIZE = "over the 2 MiB limit for one record"
KINDS: tuple[Kind, ...] = (
    # nesting
    Kind("deep-nesting", "a 21 KB line nested 10,500 levels among good records: quarantined, the file read on",
         "deep.jsonl", lambda b: lines(b, DEEP), GOOD, 1, DEEP_REASON),
    Kind("deep-nesting-s3-object", "the same inside a gzip S3 object {\"Records\": [...]}: quarantined",
         "AWSLogs/deep-object.json.gz", lambda b: gzip.compress(document(b, DEEP)), GOOD, 1, DEEP_REASON),
    Kind("deep-record-1100", "a record whose requestParameters nest 1,100 levels (past orjson's 1,024)",
         "deep-record.jsonl", lambda b: lines(b, nested(b + 99, 1100)), GOOD, 1,
         DEEP_REASON),
    Kind("deep-record-100", "a record nested 100 levels: past the limit for one record, parsed without recursion",
         "deep-100.jsonl", lambda b: lines(b, nested(b + 99, 100)), GOOD, 1,
         "nested deeper than 64 levels (the limit for one record)"),
    Kind("deep-in-a-string", "a lookup-events CloudTrailEvent string holding 10,500 levels",
         "lookup.jsonl", lambda b: lines(b, {"CloudTrailEvent": DEEP}), GOOD, 1, "JSON inside a string: nested"),
    Kind("strings-in-strings", "a record wrapped as a JSON string in a string, 12 times over",
         "wrapped.jsonl", lambda b: lines(b, wrapped_in_strings(make_event(b + 99), 12)), GOOD, 1,
         "nested too deep to be a CloudTrail record"),
    # text that is data, never markup or terminal control
    Kind("ansi-and-markup-in-every-field", "escapes, markup, emoji codes, bidi and HTML in every string field: "
         "stored as data, shown escaped", "every-field.jsonl", lambda b: lines(b, every_field_hostile(b + 99)),
         GOOD + 1),
    Kind("markup-in-agent-bucket-key", "`[/]` and `[bold]` in the user agent, bucket, key and session name",
         "markup.jsonl", lambda b: lines(b, hostile_session(b + 99), hostile_session(b + 98)), GOOD + 2),
    Kind("attack-with-hostile-names", "an attack by the hostile user on hostile names: kept, and its findings "
         "quote them as text", "attack.jsonl", lambda b: lines(b, *attack_calls(b + 90)), GOOD + 5),
    Kind("secret-arn", "Secrets Manager `:secret:` ARNs (and `:smile:`): shown as written, never as emoji",
         "secret.jsonl", lambda b: lines(b, secret_read(b + 99)), GOOD + 1),
    Kind("eventbridge-hostile-envelope", "an EventBridge envelope whose id and resources are hostile",
         "eventbridge.jsonl", lambda b: lines(b, eventbridge(make_event(b + 99, userAgent=HOSTILE))), GOOD + 1),
    # size and shape limits
    Kind("string-10mb", "a 10 MB user agent: quarantined by the 2 MiB record limit",
         "huge-string.jsonl", lambda b: lines(b, make_event(b + 99, userAgent="A" * (10 << 20))), GOOD, 1, OVER_SIZE),
    Kind("huge-first-record", "a 9 MB record on the first line (past what is sampled to tell JSON lines from a "
         "document): quarantined, the records after it kept", "huge-first.jsonl",
         lambda b: lines(b, make_event(b + 99, userAgent="B" * (9 << 20)), before=0, after=GOOD), GOOD, 1, OVER_SIZE),
    Kind("keys-100k", "an object of 100,000 keys: quarantined by the 10,000-key limit",
         "many-keys.json", lambda b: document(b, make_event(b + 99, requestParameters={
             f"k{i}": i for i in range(100_000)})), GOOD, 1, "an object with 100,000 keys"),
    Kind("bigint", "an integer past 64 bits: kept", "bigint.jsonl",
         lambda b: lines(b, make_event(b + 99, requestParameters={"n": 10 ** 30})), GOOD + 1),
    # JSON oddities
    Kind("duplicate-keys", "a record with a key twice: kept, the last value wins", "dupkeys.jsonl",
         lambda b: lines(b, json.dumps(make_event(b + 99))[:-1] + ', "eventName": "DeleteBucket"}'), GOOD + 1),
    Kind("nan-and-infinity", "NaN, Infinity, -Infinity and 1e400 as values: kept, read as null",
         "nan.jsonl", lambda b: lines(b, json.dumps(make_event(b + 99, requestParameters={
             "a": float("nan"), "b": float("inf"), "c": float("-inf"), "d": 1}))
             .replace('"d": 1', '"d": 1e400')), GOOD + 1),
    Kind("nan-event-time", "NaN where the event time must be: quarantined", "nan-time.jsonl",
         lambda b: lines(b, json.dumps(make_event(b + 99, eventTime=float("nan")))), GOOD, 1, "eventTime is missing"),
    Kind("lone-surrogates", "lone UTF-16 surrogates in values and keys: kept, as U+FFFD", "surrogates.jsonl",
         lambda b: lines(b, make_event(b + 99, userAgent="ok\ud800", requestParameters={"k\udc00": "v\udbff"})),
         GOOD + 1),
    Kind("wrong-type-event-time", "eventTime as an object, a boolean, a list: each quarantined",
         "time-types.jsonl", lambda b: lines(b, make_event(b + 97, eventTime={"t": 1}),
                                             make_event(b + 98, eventTime=True), make_event(b + 99, eventTime=[1])),
         GOOD, 3, "eventTime"),
    Kind("wrong-type-user-identity", "userIdentity as a string, a list, a number: each quarantined",
         "identity-types.json", lambda b: document(b, make_event(b + 97, userIdentity="alice"),
                                                   make_event(b + 98, userIdentity=["a"]),
                                                   make_event(b + 99, userIdentity=7)),
         GOOD, 3, "userIdentity is a"),
    Kind("numbers-among-records", "numbers where records should be: each quarantined", "numbers-mixed.json",
         lambda b: ("[" + ", ".join([json.dumps(r) for r in good(b, GOOD_BEFORE)] + ["1", "2.5", "-3"]
                                    + [json.dumps(make_event(b + GOOD_BEFORE + j)) for j in range(GOOD_AFTER)])
                    + "]").encode(), GOOD, 3, "where a record was expected"),
    Kind("array-of-numbers", "a JSON array of numbers only: not CloudTrail, skipped and said so",
         "numbers.json", lambda b: json.dumps(list(range(1000))).encode(), 0, skipped="not CloudTrail"),
    Kind("json-scalar", "a file holding one JSON string: skipped and said so", "scalar.json",
         lambda b: json.dumps(HOSTILE).encode(), 0, skipped="not CloudTrail: a JSON string"),
    Kind("zero-byte-records", "empty lines (records of 0 bytes) between records: ignored", "blank.jsonl",
         lambda b: lines(b, b"", b"", b"   ", b"\t"), GOOD),
    Kind("bom", "a UTF-8 byte-order mark before the first record", "bom.jsonl",
         lambda b: b"\xef\xbb\xbf" + lines(b), GOOD),
    Kind("crlf", "CRLF line endings", "crlf.jsonl", lambda b: lines(b, newline=b"\r\n"), GOOD),
    Kind("nul-in-record", "a NUL byte inside a record: that record quarantined", "nul.jsonl",
         lambda b: lines(b, json.dumps(make_event(b + 99)).replace("GetObject", "Get\x00Object")), GOOD, 1,
         "malformed JSON"),
    Kind("overlong-utf8", "an overlong UTF-8 sequence (C0 AF for '/') inside a record", "overlong.jsonl",
         lambda b: lines(b, json.dumps(make_event(b + 99)).encode().replace(b"reports/", b"reports\xc0\xaf")),
         GOOD, 1, "malformed JSON"),
    Kind("garbage-line", "a line that is not JSON at all between records", "garbage.jsonl",
         lambda b: lines(b, "{this is not json" + HOSTILE), GOOD, 1, "malformed JSON"),
    # damaged files
    Kind("truncated-document", "a document cut inside a record: the whole ones kept, the cut one quarantined",
         "truncated.json", truncated_document, GOOD_BEFORE, 1, "damaged record", error="malformed JSON"),
    Kind("truncated-gzip", "a gzip cut part-way: every whole record kept, the cut one quarantined",
         "truncated.jsonl.gz", truncated_gzip, GOOD_BEFORE, 1, "malformed JSON", error="truncated gzip"),
    Kind("empty-file", "a file of 0 bytes: skipped as empty", "empty.json", lambda b: b"", 0, skipped="empty file"),
    Kind("gzip-crc-flipped-bit", "a gzip with one bit of its CRC flipped: every record kept, the damage said",
         "crc.json.gz", lambda b: flip(gzip.compress(document(b)), -6, 0x01), GOOD,
         error="corrupt gzip data (incorrect data check)"),
    Kind("gzip-deflate-damage", "a gzip with a damaged deflate block: the records before it kept",
         "deflate.jsonl.gz", deflate_damage, GOOD_BEFORE, error="corrupt gzip data (invalid block type)"),
    Kind("gzip-damaged-header", "a gzip with a reserved header flag set: read on, the damage said",
         "header.json.gz", lambda b: flip(gzip.compress(document(b)), 3, 0x20), GOOD, error="damaged gzip header"),
    Kind("gzip-damaged-magic", "a gzip whose magic number is damaged: an error, not a skip",
         "magic.json.gz", lambda b: flip(gzip.compress(document(b)), 0, 0xff), 0, 1, "not JSON",
         error="not JSON: the name ends .json.gz but the content is binary data"),
    Kind("random-bytes-json-gz", "random bytes named .json.gz: an error (exit 3), not a skip",
         "random.json.gz", lambda b: bytes((i * 7919 + 13) % 251 for i in range(4096)), 0, 1, "not JSON",
         error="not JSON: the name ends .json.gz but the content is binary data"),
    Kind("text-named-json", "text that is not JSON named .json: an error", "words.json",
         lambda b: b"hello " + HOSTILE.encode() + b"\nnot json\n", 0, 1, "not JSON",
         error="not JSON: the name ends .json"),
    Kind("text-named-gz", "plain text named .gz: an error", "plain.gz", lambda b: b"plain text named as gzip\n", 0, 1,
         "not gzip", error="not gzip: the name ends .gz but the content is text"),
    Kind("gzip-bomb-nested", "24 KB (a gzip of a gzip) that inflate to 10 GB: stopped by the ratio limit, the "
         "records before it kept", "bomb.jsonl.gz", lambda b: gzip.compress(gzip_bomb(lines(b), 10 << 30), 9),
         GOOD, 1, "malformed JSON", error="gzip bomb: "),
    Kind("gzip-bomb-1kb", "580 bytes (gzip three times over) that inflate to 10 GB: read twice, never a third "
         "time, and refused", "bomb-1kb.json.gz", lambda b: gzip.compress(gzip.compress(gzip_bomb(b"", 10 << 30), 9)),
         0, 1, "not JSON", error="not JSON: the name ends .json.gz but the content inside the gzip is binary data"),
    # paths
    Kind("non-utf8-file-name", "a file name that is not UTF-8: read, shown with \\xNN escapes",
         b"trail-\xff\xfe.jsonl", lambda b: lines(b, f"{{broken {b}"), GOOD, 1, "malformed JSON"),
    Kind("markup-in-path", "`[/` and `[bold]` in a folder and file name", "d[/x] [bold]y/z[/].jsonl",
         lambda b: lines(b, f"{{broken {b}"), GOOD, 1, "malformed JSON"),
    Kind("ansi-in-file-name", "an escape sequence, a bidi override and a line break in a file name",
         f"ansi-{ESC}[31mred{ESC}]0;t\x07\u202e\nname.jsonl", lambda b: lines(b, f"{{broken {b}"), GOOD, 1,
         "malformed JSON"),
    Kind("symlinked-folder", "a link to a folder outside the corpus: followed once",
         "linked/trail.jsonl", lambda b: lines(b, f"{{broken {b}"), GOOD, 1, "malformed JSON", link="../outside"),
    Kind("symlink-loop", "a link back to a folder it is in: reported as a loop, not followed",
         "loop/back", None, 0, skipped="symbolic link loop", link="."),
    Kind("broken-symlink", "a link to nothing: an error naming where it points", "gone.json", None, 0,
         error="broken symbolic link", link="../nowhere.json"),
)
# Kinds that are options, not files: run against the store the corpus was ingested into.
OPTION_KINDS = (
    ("since-banana", "`findings list --since banana`: a usage error (exit 2), as JSON with --json"),
    ("fatal-error-json", "a fatal error (the store is not a database) with --json: a JSON error object, exit 1"),
)


def build_corpus(root: Path) -> tuple[Path, dict[str, Kind]]:
    """The corpus folder, and each kind by its file's display path (as the store names it)."""
    corpus = root / "corpus"
    corpus.mkdir()
    (root / "outside").mkdir()
    by_path: dict[str, Kind] = {}
    for number, kind in enumerate(KINDS, 1):
        base = number * 1000
        if kind.link is not None:
            name = kind.file if isinstance(kind.file, str) else os.fsdecode(kind.file)
            link = corpus / name.split("/")[0]
            if kind.build is not None:  # the linked folder holds the file
                target = (corpus / kind.link).resolve()
                (target / name.split("/", 1)[1]).write_bytes(kind.build(base))
            else:
                link.parent.mkdir(parents=True, exist_ok=True)
            path = corpus / name
            if kind.name == "symlink-loop":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.symlink_to(path.parent)
            else:
                link.symlink_to(kind.link)
        else:
            path = Path(os.fsdecode(os.fsencode(corpus) + b"/" + kind.file)) if isinstance(kind.file, bytes) \
                else corpus / kind.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(kind.build(base))
        display = os.fsencode(path).decode("utf-8", "backslashreplace")
        by_path[display] = kind
    return corpus, by_path


# -- running the command line -------------------------------------------------------------------------

@dataclass
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    peak_mb: int  # the largest resident set of the process or any process it waited for


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k != "NHIWATCH_HOME" and k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE")}
    env.update(extra)
    return env


# Runs the CLI as `python -m nhiwatch` does and, on the way out, writes the peak resident memory of the CLI
# (its own VmHWM) and of the workers it waited for (RUSAGE_CHILDREN). Not the parent's wait4: Linux carries a
# parent's peak into a child's across fork and exec, so a test process grown large by earlier tests (or an
# xdist worker) would be reported instead of the CLI.
_PEAK_WRAPPER = """import os, resource, runpy, sys
sys.argv = ['nhiwatch'] + sys.argv[1:]
try:
    runpy.run_module('nhiwatch', run_name='__main__')
finally:
    try:
        own = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1])
    except (OSError, StopIteration):
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(os.environ['NHIWATCH_TEST_PEAK_FILE'], 'w') as f:
        f.write(str(max(own, workers)))
"""


def nhiwatch(*args: str, env: dict | None = None, timeout: float = 300) -> Run:
    """`python -m nhiwatch ARGS` in a subprocess, with the peak memory of it and its workers."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".peak") as peak:
        run_env = dict(env or cli_env(), NHIWATCH_TEST_PEAK_FILE=peak.name)
        process = subprocess.Popen([sys.executable, "-c", _PEAK_WRAPPER, *args], stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL, env=run_env)
        timer = threading.Timer(timeout, os.kill, (process.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        written = peak.read().strip()
        # killed before it could write: what wait4 says (an over-estimate, never an under-estimate)
        peak_kb = int(written) if written else usage.ru_maxrss
        return Run(args, process.returncode, out.read().decode("utf-8", "replace"),
                   err.read().decode("utf-8", "replace"), peak_kb // 1024)


def assert_clean(run: Run, *codes: int) -> None:
    """Exit code as documented, no traceback, nothing raw that a terminal would act on, memory bounded."""
    assert run.returncode in codes, (run.args, run.returncode, run.stderr[-3000:])
    assert "Traceback" not in run.stderr and "MarkupError" not in run.stderr, run.stderr[-3000:]
    for stream in (run.stdout, run.stderr):
        raw = [c for c in RAW_CONTROLS if c in stream]
        assert not raw, f"{run.args}: raw control characters {raw!r} in {stream[:3000]!r}"
        assert "㊙" not in stream and "😄" not in stream  # no emoji codes applied
    assert run.peak_mb < MEMORY_LIMIT_MB, f"{run.args}: peak memory {run.peak_mb} MB"


# -- ingest, analyze and the views on what they stored -------------------------------------------------

@pytest.fixture(scope="module")
def corpus() -> Iterator[tuple[Path, dict[str, Kind]]]:
    # A short folder of its own, not pytest's: the human-mode table cuts a long path at a fixed width, and
    # pytest's temporary folder is longer under xdist (.../popen-gw0/...) or a longer user name, which put
    # the cut on the file names test_reingest_in_human_mode_prints_escaped_text... looks for.
    root = Path(tempfile.mkdtemp(prefix="nw-hostile-"))
    try:
        yield build_corpus(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def ingested(corpus, tmp_path_factory) -> tuple[Path, dict]:
    folder, _ = corpus
    home = tmp_path_factory.mktemp("store") / "home"
    run = nhiwatch("ingest", str(folder), "--home", str(home), "--json")
    assert_clean(run, 3)  # files with errors: exit 3 (README, exit codes)
    print(f"ingest peak memory: {run.peak_mb} MB")
    return home, json.loads(run.stdout)


def test_the_table_has_at_least_30_kinds():
    names = [k.name for k in KINDS] + [name for name, _ in OPTION_KINDS]
    assert len(names) == len(set(names)) >= 30


def _quarantine_by_file(home: Path) -> dict[str, list[tuple[str, str]]]:
    with Store(home, read_only=True) as store:
        rows = store.con.execute("SELECT source_file, locator, reason FROM quarantine").fetchall()
    found: dict[str, list[tuple[str, str]]] = {}
    for source, locator, reason in rows:
        found.setdefault(source, []).append((locator, reason))
    return found


def test_ingest_keeps_the_good_records_and_quarantines_each_bad_one_with_its_reason(corpus, ingested):
    _, kinds = corpus
    home, report = ingested
    per_file = {f["path"]: f for f in report["files_detail"]}
    assert set(per_file) == set(kinds), set(per_file) ^ set(kinds)
    quarantine = _quarantine_by_file(home)
    problems = []
    for path, kind in kinds.items():
        outcome = per_file[path]
        got = (outcome["accepted"], outcome["quarantined"], outcome["duplicate"])
        if got != (kind.accepted, kind.quarantined, 0):
            problems.append(f"{kind.name}: accepted, quarantined, duplicate {got}, expected "
                            f"{(kind.accepted, kind.quarantined, 0)} ({outcome})")
        if not (outcome["error"] or "").startswith(kind.error) or bool(outcome["error"]) != bool(kind.error):
            problems.append(f"{kind.name}: error {outcome['error']!r}, expected {kind.error!r}...")
        if not (outcome["skipped"] or "").startswith(kind.skipped) or bool(outcome["skipped"]) != bool(kind.skipped):
            problems.append(f"{kind.name}: skipped {outcome['skipped']!r}, expected {kind.skipped!r}...")
        rows = quarantine.get(path, [])
        if len(rows) != kind.quarantined or not all(reason.strip() and kind.reason in reason for _, reason in rows):
            problems.append(f"{kind.name}: quarantined {rows!r}, expected {kind.quarantined} with {kind.reason!r}")
    assert not problems, "\n".join(problems)
    assert report["accepted"] == sum(k.accepted for k in kinds.values())
    assert report["quarantined"] == sum(k.quarantined for k in kinds.values())
    assert report["files_with_errors"] == sum(bool(k.error) for k in kinds.values())
    with Store(home, read_only=True) as store:
        events, distinct = store.con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
        empty = store.con.execute("SELECT count(*) FROM quarantine WHERE coalesce(trim(reason), '') = ''").fetchone()
    assert events == distinct == report["accepted"]
    assert empty == (0,)


def test_the_hostile_text_is_stored_as_written(corpus, ingested):
    home, _ = ingested
    with Store(home, read_only=True) as store:
        agents = {a for (a,) in store.con.execute("SELECT user_agent FROM events").fetchall()}
        principals = {p for (p,) in store.con.execute("SELECT principal FROM events").fetchall()}
    assert f"evil-agent/{HOSTILE}" in agents and f"[bold]aws-cli/2.0 {HOSTILE}" in agents
    assert "ok\ufffd" in agents  # a lone surrogate repaired, the rest kept
    assert f"arn:aws:iam::123456789012:user/{HOSTILE_USER}" in principals


def test_reingest_in_human_mode_prints_escaped_text_and_stores_nothing_twice(corpus, ingested, tmp_path):
    folder, kinds = corpus
    home, report = ingested
    # wide enough that the table's cut of a long temporary path never lands on the parts checked below
    run = nhiwatch("ingest", str(folder), "--home", str(home), env={**cli_env(), "COLUMNS": "400"})
    assert_clean(run, 3)
    assert f"{len(kinds)} files: 0 accepted, {report['accepted']} duplicate" in run.stdout
    # the hostile parts of the file names show, escaped
    assert "[bold]y/z[/].jsonl" in run.stdout and "trail-\\xff\\xfe" in run.stdout
    assert "ansi-\\x1b[31mred" in run.stdout
    with Store(home, read_only=True) as store:
        assert store.con.execute("SELECT count(*) FROM events").fetchone()[0] == report["accepted"]
        assert store.con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == report["quarantined"]


@pytest.fixture(scope="module")
def analyzed(ingested) -> Path:
    home, _ = ingested
    run = nhiwatch("analyze", "--home", str(home), "--json")
    assert_clean(run, 0)
    assert json.loads(run.stdout)["events_judged"] > 0
    return home


def test_views_of_the_hostile_store_print_text_never_control(analyzed):
    home = str(analyzed)
    listed = nhiwatch("findings", "list", "--min-severity", "info", "--limit", "0", "--home", home, "--json")
    assert_clean(listed, 0)
    findings = json.loads(listed.stdout)["findings"]
    on_mallory = [f for f in findings if f["identity"]["arn"].endswith(HOSTILE_USER)]
    assert {f["detector"] for f in on_mallory} >= {"attack-tool-agent", "defense-evasion-first-use"}
    assert any(f"backdoor{HOSTILE}" in f["explanation"] for f in on_mallory)  # JSON carries the text exactly
    runs = {}
    for args in (("quarantine", "--limit", "100000"), ("quarantine", "--raw", "--limit", "100000"),
                 ("baseline", "show", "role/service/app-server"), ("baseline", "show", "user/mallory"),
                 ("findings", "list", "--min-severity", "info", "--limit", "0"),
                 ("findings", "show", on_mallory[0]["id"]), ("stats",), ("incidents", "list")):
        run = nhiwatch(*args, "--home", home)
        assert_clean(run, 0)
        runs[args[:2] if args[0] != "baseline" else args[2]] = run.stdout
    role = runs["role/service/app-server"]
    assert "[/]bucket[bold]\\x1b[31m" in role  # markup and escapes as text
    assert SECRET_ARN in role  # :secret: and :smile: never become emoji
    assert "user/mallory[/]\\x1b[31m" in runs["user/mallory"]
    assert "user/mallory[/]\\x1b[31m" in runs["findings", "list"] and ":smile: \\x1b[31mRED" in runs["findings", "list"]
    assert "user/mallory[/]\\x1b[31m" in runs["findings", "show"]
    listing = runs["quarantine", "--limit"]
    assert "d[/x] [bold]y/z[/].jsonl" in listing and "\\u202e\\nname.jsonl" in listing
    assert DEEP_REASON in listing


def test_option_kinds_are_usage_and_json_errors(analyzed, tmp_path):
    home = str(analyzed)
    run = nhiwatch("findings", "list", "--since", "banana", "--home", home)
    assert_clean(run, 2)
    assert "banana" in run.stderr
    run = nhiwatch("findings", "list", "--since", "banana", "--home", home, "--json")
    assert_clean(run, 2)
    assert json.loads(run.stdout)["exit_code"] == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "nhiwatch.duckdb").write_bytes(HOSTILE.encode())
    run = nhiwatch("stats", "--home", str(broken), "--json")
    assert_clean(run, 1)
    assert json.loads(run.stdout)["exit_code"] == 1 and "error:" in run.stderr


def test_analyze_reads_the_corpus_with_the_same_counts(corpus, ingested, tmp_path):
    folder, kinds = corpus
    _, report = ingested
    home = tmp_path / "home"
    run = nhiwatch("analyze", str(folder), "--home", str(home))  # human mode: problems name hostile paths
    assert_clean(run, 3)  # finished, some files unreadable (README, exit codes)
    assert "problem:" in run.stderr and "random.json.gz:" in run.stderr
    with Store(home, read_only=True) as store:
        events = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
        quarantined = store.con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        judged = store.con.execute("SELECT count(*) FROM profiles").fetchone()[0]
    assert (events, quarantined) == (report["accepted"], report["quarantined"])
    assert judged > 0
    print(f"analyze peak memory: {run.peak_mb} MB")


# -- watch --once on an S3 trail holding the same objects ---------------------------------------------

def _s3_key(kind: Kind) -> str:
    """The file's name as a key, escapes and markup kept (moto's server cannot route a line break)."""
    return f"AWSLogs/hostile/{kind.name}/{kind.file}".replace("\n", " ")


def _expected_as_object(kind: Kind) -> tuple[int, int]:
    """(events, quarantined) of the kind read as an S3 object or an intake body: a skipped file is
    kept in quarantine with the reason, as the watcher drops nothing silently."""
    return kind.accepted, kind.quarantined + (1 if kind.skipped else 0)


def test_watch_once_reads_every_hostile_object_from_s3(aws_live, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="hostile-trail")
    uploaded = {}
    for number, kind in enumerate(KINDS, 1):
        if kind.s3:
            key = _s3_key(kind)
            s3.put_object(Bucket="hostile-trail", Key=key, Body=kind.build(number * 1000))
            uploaded[key] = kind
    home = tmp_path / "home"
    out = tmp_path / "findings.jsonl"
    run = nhiwatch("watch", "--once", "--s3", "s3://hostile-trail/AWSLogs/", "--sink", f"jsonl:{out}",
                   "--min-severity", "info", "--home", str(home), "--json", env=cli_env())
    assert_clean(run, 0)
    summary = json.loads(run.stdout)
    print(f"watch --once peak memory: {run.peak_mb} MB")
    with Store(home, read_only=True) as store:
        rows = store.con.execute("SELECT key, events, quarantined FROM watch_objects").fetchall()
        objects = {key: (events, quarantined) for key, events, quarantined in rows}
        quarantine = store.con.execute("SELECT source_file, reason FROM quarantine").fetchall()
        events = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
    wrong = {kind.name: (objects.get(key), _expected_as_object(kind)) for key, kind in uploaded.items()
             if objects.get(key) != _expected_as_object(kind)}
    assert not wrong, wrong
    assert events == summary["events"] == sum(k.accepted for k in uploaded.values())
    assert len(quarantine) == sum(_expected_as_object(k)[1] for k in uploaded.values())
    assert all(reason.strip() for _, reason in quarantine)
    for key, kind in uploaded.items():
        reasons = [r for source, r in quarantine if source == f"s3://hostile-trail/{key}"]
        assert all(kind.reason in r for r in reasons) or kind.skipped, (kind.name, reasons)


# -- the intake of a running watcher, over HTTP --------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    if len(body) > INTAKE_LIMIT:  # refused on its length: only the headers are sent (the rest would be reset)
        host, port = url.split("/")[2].split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        connection.putrequest("POST", "/events")
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        answer = response.status, json.loads(response.read() or b"{}")
        connection.close()
        return answer
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _peak_mb(pid: int) -> int:
    """The peak resident memory of a running process (VmHWM) and the largest of its children's."""
    peaks = []
    for candidate in [pid] + [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]:
        try:
            status = Path(f"/proc/{candidate}/status").read_text()
        except OSError:
            continue
        peaks += [int(line.split()[1]) // 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    return max(peaks)


def test_the_intake_answers_every_hostile_body_and_keeps_running(tmp_path):
    secret = "s3cret-s3cret-s3cret"
    port = _free_port()
    home = tmp_path / "home"
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        watcher = subprocess.Popen([sys.executable, "-m", "nhiwatch", "watch", "--intake", f"127.0.0.1:{port}",
                                    "--home", str(home)], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   env=cli_env(NHIWATCH_INTAKE_SECRET=secret))
        answers = {}
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                        break
                except (urllib.error.URLError, OSError):
                    assert watcher.poll() is None and time.monotonic() < deadline, "the intake did not start"
                    time.sleep(0.1)
            url = f"http://127.0.0.1:{port}/events"
            for number, kind in enumerate(KINDS, 1):
                if kind.s3:
                    body = kind.build(number * 1000)
                    answers[kind.name] = kind, len(body), _post(url, body, {"X-Nhiwatch-Secret": secret})
                    assert watcher.poll() is None, f"the watcher died on {kind.name}"
            # and each hostile record alone, without good ones around it
            alone = {"deep": DEEP.encode(), "every-field": json.dumps(every_field_hostile(1)).encode(),
                     "numbers": b"[1, 2, 3]", "nul": b'{"eventName": "a\x00b"}', "overlong": b'{"a": "\xc0\xaf"}'}
            for name, body in alone.items():
                answers[name] = None, len(body), _post(url, body, {"X-Nhiwatch-Secret": secret})
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
                assert response.status == 200
            peak = _peak_mb(watcher.pid)
        finally:
            watcher.send_signal(signal.SIGTERM)
            try:
                watcher.wait(timeout=120)
            except subprocess.TimeoutExpired:
                watcher.kill()
                watcher.wait()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    print(f"intake watcher peak memory: {peak} MB")
    assert watcher.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr and ESC not in stderr, stderr[-3000:]
    assert peak < MEMORY_LIMIT_MB
    wrong = {}
    posted_events = posted_quarantined = 0
    for name, (kind, size, (status, answer)) in answers.items():
        if kind is None:
            continue
        events, quarantined = _expected_as_object(kind)
        if size > INTAKE_LIMIT:
            expected = (413, None, None)  # refused on its length, before a byte is read
        else:
            expected = (200 if events else 400, events, quarantined)
            posted_events += events
            posted_quarantined += quarantined
        got = (status, answer.get("events"), answer.get("quarantined"))
        if got != expected:
            wrong[name] = (got, expected, answer)
    assert not wrong, wrong
    status = {name: answers[name][2][0] for name in ("deep", "every-field", "numbers", "nul", "overlong")}
    assert status == {"deep": 400, "every-field": 200, "numbers": 400, "nul": 400, "overlong": 400}
    assert answers["deep"][2][1]["error"] == DEEP_REASON
    with Store(home, read_only=True) as store:
        events = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
        reasons = [r for (r,) in store.con.execute("SELECT reason FROM quarantine").fetchall()]
    assert events == posted_events + 1  # and the hostile record posted alone
    # every bad record posted differs: the same one posted again (a retry) would be kept once
    assert len(reasons) == posted_quarantined + 4 and all(r.strip() for r in reasons)
