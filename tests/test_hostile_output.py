"""Every string from an event is data: the real command line (in subprocesses), the HTML report and the
dashboard show hostile text as written, never as Rich markup, emoji codes, terminal control or HTML.
Options are validated (exit 2), --json carries errors as JSON, and an unknown action id is unknown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

STRATUS = Path(__file__).parents[1].parent / "shared" / "data" / "cloudtrail" / "stratus-detonations"
FILES = ("aws.credential-access.secretsmanager-retrieve-secrets.json", "aws.defense-evasion.cloudtrail-stop.json",
         "aws.persistence.iam-create-admin-user.json", "aws.exfiltration.ec2-share-ebs-snapshot.json",
         "aws.persistence.iam-backdoor-role.json")

ESC = "\x1b"
# What an attacker can write into a user agent, a session or user name, a bucket, a key, an error message:
# Rich markup (one that crashes, one that styles), emoji codes, SGR colours, an OSC 8 hyperlink, a window
# title, screen and cursor control, carriage return, backspace, NUL, DEL, C1 CSI and NEL, a bidi override,
# a zero-width space, HTML and a javascript: URL.
HOSTILE = ("[/] [bold red]x[/] :secret: :smile: " f"{ESC}[31mRED{ESC}[0m "
           f"{ESC}]8;;javascript:alert(1){ESC}\\link{ESC}]8;;{ESC}\\ {ESC}]0;pwned\x07 {ESC}[2J{ESC}[1A "
           "a\rb\bc\x00d\x7fe\x9bf\x85g \u202eevil\u202c z\u200bw <script>alert(1)</script> "
           "<img src=x onerror=alert(1)> javascript:alert(1)")
# A client's family (what explanations and baselines name) is its user agent up to the first "/", " " or "("
UA_HEAD = f"{ESC}]0;pwned\x07{ESC}[31m[bold]x[\u202eevil\r\x9bz:secret:"
USER_AGENT = f"{UA_HEAD} {HOSTILE}"
NAME = f"mallory[/]{ESC}[31m"  # the user the detonations ran as, renamed
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db[/]-AbCdEf"
BUCKET = (f"bucket[bold red]x[/]{ESC}[31m {ESC}]8;;http://evil.example/{ESC}\\click{ESC}]8;;{ESC}\\ safe\rEVIL "
          "\u202egpj.exe <img src=x onerror=alert(1)><script>alert(1)</script> javascript:alert(1)")
KEY = f"key[/]{ESC}]8;;http://evil.example/{ESC}\\click{ESC}]8;;{ESC}\\ safe\rEVIL \u202egpj.exe"
SESSION = f"sess[/]{ESC}[2J"
ROLE = "arn:aws:iam::123456789012:role/app-role"
# What must never reach a terminal raw (line breaks aside)
RAW_CONTROLS = (ESC, "\x07", "\x08", "\x00", "\x7f", "\x9b", "\x85", "\r", "\u202e", "\u200b")

pytestmark = pytest.mark.skipif(not STRATUS.is_dir(), reason="needs ../shared")


def nhiwatch(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nhiwatch", *args], capture_output=True, text=True, timeout=300,
                          env=env, errors="surrogateescape")


def _own_records() -> list[dict]:
    """An app role's calls with a hostile session name, bucket, key and user agent; a secret ARN with `[/]`."""
    records = []
    for i in range(6):
        secret = i % 2 == 1
        record = {
            "eventVersion": "1.08", "eventTime": f"2026-03-0{1 + i}T10:00:00Z", "awsRegion": "us-east-1",
            "eventSource": "secretsmanager.amazonaws.com" if secret else "s3.amazonaws.com",
            "eventName": "GetSecretValue" if secret else "GetObject", "sourceIPAddress": "203.0.113.7",
            "userAgent": USER_AGENT, "requestID": f"req-{i}", "eventID": f"hostile-{i}", "readOnly": True,
            "eventType": "AwsApiCall", "managementEvent": secret, "recipientAccountId": "123456789012",
            "userIdentity": {
                "type": "AssumedRole", "principalId": f"AROAEXAMPLEAPPROLE:{SESSION}",
                "arn": f"arn:aws:sts::123456789012:assumed-role/app-role/{SESSION}", "accountId": "123456789012",
                "accessKeyId": "ASIAEXAMPLEHOSTILE01",
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEAPPROLE", "arn": ROLE,
                                                     "accountId": "123456789012", "userName": "app-role"},
                                   "attributes": {"creationDate": "2026-03-01T00:00:00Z", "mfaAuthenticated": "false"}}},
            "requestParameters": {"secretId": SECRET} if secret else {"bucketName": BUCKET, "key": KEY},
        }
        if i == 5:
            record.update(errorCode="AccessDenied", errorMessage="denied " + HOSTILE)
        records.append(record)
    return records


@pytest.fixture(scope="module")
def trails(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for name in FILES:
        records = json.loads((STRATUS / name).read_text())
        for record in records:
            record["userAgent"] = USER_AGENT
            record["sourceIPAddress"] = "1.2.3.4"
            user = record.get("userIdentity") or {}
            if "user/christophe" in user.get("arn", ""):
                user["arn"] = user["arn"].replace("user/christophe", "user/" + NAME)
                user["userName"] = NAME
        (folder / name).write_text(json.dumps(records))
    (folder / "own.json").write_text(json.dumps({"Records": _own_records()}))
    # a file path with `[/` and markup in it, holding one good and one bad record (quarantined)
    odd = folder / "d["
    odd.mkdir()
    good = dict(_own_records()[0], eventID="odd-path-good")
    (odd / "x] [bold]y.json").write_text(json.dumps({"Records": [good, {"eventTime": "never", "eventName": 5}]}))
    return folder


@pytest.fixture(scope="module")
def home(trails, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("store") / "home"
    ingested = nhiwatch("ingest", str(trails), "--home", str(home))  # human mode: paths with `[/` are text
    _assert_clean(ingested)
    assert "d[/x] [bold]y.json" in ingested.stdout and "1 quarantined" in ingested.stdout
    analyzed = nhiwatch("analyze", "--home", str(home))
    _assert_clean(analyzed)
    return home


def _assert_clean(run: subprocess.CompletedProcess, code: int = 0) -> None:
    assert run.returncode == code, run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "MarkupError" not in run.stderr
    for stream in (run.stdout, run.stderr):
        raw = [c for c in RAW_CONTROLS if c in stream]
        assert not raw, f"raw control characters {raw!r} in {stream[:2000]!r}"
        assert "㊙" not in stream and "😄" not in stream  # no emoji codes applied


def _json(*args: str) -> object:
    run = nhiwatch(*args, "--json")
    assert run.returncode == 0, run.stderr[-3000:]
    assert ESC not in run.stdout and "\x9b" not in run.stdout and "\u202e" not in run.stdout  # escaped by JSON
    return json.loads(run.stdout)


def _ids(home: Path) -> tuple[str, str, str]:
    """A finding on the renamed user, an incident naming it, and the user's ARN."""
    findings = _json("findings", "list", "--min-severity", "info", "--limit", "0", "--home", str(home))["findings"]
    finding = next(f for f in findings if NAME in f["identity"]["arn"] and UA_HEAD.lower() in f["explanation"])
    incidents = _json("incidents", "list", "--home", str(home))["incidents"]
    incident = next(i for i in incidents if any(NAME in x for x in i["identities"]))
    return finding["id"], incident["id"], finding["identity"]["arn"]


def test_human_output_shows_event_text_as_written(home: Path):
    finding_id, incident_id, user_arn = _ids(home)
    h = ("--home", str(home))
    outputs = {}
    for args in (("stats",), ("quarantine",), ("quarantine", "--raw"), ("baseline", "show", ROLE),
                 ("baseline", "show", user_arn), ("findings", "list", "--min-severity", "info", "--limit", "0"),
                 ("findings", "show", finding_id), ("incidents", "list"), ("incidents", "show", incident_id),
                 ("respond", "plan", incident_id), ("analyze",)):
        run = nhiwatch(*args, *h)
        _assert_clean(run)
        outputs[args[:2] if args[0] != "baseline" else args[2]] = run.stdout
    everything = "\n".join(outputs.values())
    # markup prints as written, the ARN with :secret: is not rewritten
    role = outputs[ROLE]
    assert "bucket[bold red]x[/]\\x1b[31m" in role and SECRET in role
    # escapes are shown, visibly: SGR, OSC 8, carriage return, bidi override
    assert "\\x1b]8;;http://evil.example/\\x1b\\click" in role and "safe\\rEVIL" in role
    assert "\\u202egpj.exe" in role
    assert "user/mallory[/]\\x1b[31m" in outputs["findings", "list"] and "[/]" in outputs[user_arn]
    # the client (lower-cased in explanations and baselines) with every kind of control shown escaped
    assert "\\x1b]0;pwned\\x07\\x1b[31m[bold]x[\\u202eevil\\r\\x9bz:secret:" in everything
    # the file path with `[/` in the quarantine listing
    assert "d[/x] [bold]y.json" in outputs["quarantine",] and "d[/x] [bold]y.json" in outputs["quarantine", "--raw"]


def test_json_round_trips_hostile_strings_exactly(home: Path):
    baseline = _json("baseline", "show", ROLE, "--home", str(home))
    resources = {v["value"] for v in baseline["top"]["resource"]}
    assert SECRET in resources and BUCKET in resources  # byte for byte
    finding_id, _incident_id, user_arn = _ids(home)
    assert user_arn.endswith("user/" + NAME)
    finding = _json("findings", "show", finding_id, "--home", str(home))
    assert UA_HEAD.lower() in finding["explanation"] and user_arn in finding["explanation"]
    agents = {v["value"] for v in baseline["top"]["agent"]}
    assert UA_HEAD.lower() in agents
    rows = _json("quarantine", "--home", str(home))
    assert any(r["source_file"].endswith("d[/x] [bold]y.json") for r in rows)


def test_bad_times_and_values_are_usage_errors(home: Path):
    h = ("--home", str(home))
    for args in (("findings", "list", "--since", "banana"), ("analyze", "--learn-until", "N/A"),
                 ("inventory", "refresh", "--as-of", "tomorrow"), ("watch", "--learn-until", "x", "--once")):
        run = nhiwatch(*args, *h)
        assert run.returncode == 2 and args[-2 if args[-1] != "--once" else -3] in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
        as_json = nhiwatch(*args, *h, "--json")
        error = json.loads(as_json.stdout)
        assert as_json.returncode == 2 and error["exit_code"] == 2 and "ISO-8601" in error["error"]
    for args in (("findings", "list", "--min-severity", "severe"), ("incidents", "list", "--status", "closed"),
                 ("analyze", "--format", "xml"), ("watch", "--min-severity", "loud", "--s3", "s3://b/p", "--once")):
        run = nhiwatch(*args, *h, "--json")
        assert run.returncode == 2 and json.loads(run.stdout)["exit_code"] == 2, run.stderr
    listed = nhiwatch("findings", "list", "--since", "2024-08-01", "--min-severity", "info", "--json", *h)
    assert listed.returncode == 0 and all(f["first_seen"] >= "2024-08-01" for f in json.loads(listed.stdout)["findings"])


def test_fatal_errors_with_json_are_json(tmp_path: Path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "nhiwatch.duckdb").write_text("not a database")
    run = nhiwatch("stats", "--json", "--home", str(broken))
    assert run.returncode == 1 and "error:" in run.stderr
    assert json.loads(run.stdout)["exit_code"] == 1
    # an unexpected failure inside a command (an exception nobody caught), with hostile text in its message
    code = ("import sys; from nhiwatch.store import db\n"
            "def boom(self): raise RuntimeError(" + repr(HOSTILE) + ")\n"
            "db.Store.stats = boom\n"
            "from nhiwatch.cli.app import main; sys.argv = ['nhiwatch'] + sys.argv[1:]; main()")
    store = tmp_path / "store"
    nhiwatch("ingest", str(STRATUS / FILES[0]), "--home", str(store), "--quiet")
    for as_json in (True, False):
        run = subprocess.run([sys.executable, "-c", code, "stats", "--home", str(store)] + (["--json"] if as_json else []),
                             capture_output=True, text=True, timeout=120)
        _assert_clean(run, 1)
        assert "fatal:" in run.stderr and "RuntimeError" in run.stderr and "[bold red]x[/]" in run.stderr
        if as_json:
            error = json.loads(run.stdout)
            assert error["exit_code"] == 1 and error["error"] == f"RuntimeError: {HOSTILE}"
        else:
            assert run.stdout == ""
    # a bad option value: typer's usage error, as JSON too
    run = nhiwatch("findings", "list", "--limit", "many", "--json", "--home", str(store))
    assert run.returncode == 2 and "--limit" in json.loads(run.stdout)["error"]


def _no_aws_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    return env


def test_undo_of_an_unknown_action_says_so(home: Path, tmp_path: Path):
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    env = _no_aws_env()  # no credentials: the answer must still be "unknown id", not "no credentials"
    for extra in ((), ("--execute",)):
        run = nhiwatch("respond", "undo", "act-000000000000", "--home", str(copy), *extra, env=env)
        assert run.returncode == 2 and "no action act-000000000000" in run.stderr, run.stderr
        run = nhiwatch("respond", "undo", "act-000000000000", "--home", str(copy), "--json", *extra, env=env)
        assert run.returncode == 2 and "no action" in json.loads(run.stdout)["error"]
    served = subprocess.Popen([sys.executable, "-m", "nhiwatch", "serve", "--home", str(copy), "--port", "0", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        info = json.loads(served.stdout.readline())
        request = urllib.request.Request(info["url"] + "api/actions/act-000000000000/undo", method="POST", data=b"{}",
                                         headers={"X-Nhiwatch-Token": info["token"],
                                                  "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=60)
        assert answer.value.code == 404 and "no action" in json.loads(answer.value.read())["detail"]
    finally:
        served.terminate()
        served.wait(timeout=30)


# -- the HTML report ----------------------------------------------------------------------------------

class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _report_data() -> dict:
    h = HOSTILE + " ' \" <marquee>bold</marquee>"
    return {
        "simulation": {"accounts": 1, "nhis": 1}, "stats": {"events": 3},
        "ingest": {"files": 1, "records": 3, "accepted": 3, "duplicate": 0, "quarantined": 0, "files_skipped": 0},
        "labels": {"org_id": h, "start": "2026-03-01", "end": "2026-03-02", "days": 1, "config": {"seed": 1},
                   "scenarios": [{"id": h, "title": h, "principal": h, "stratus": [h], "mitre": [h], "start": h,
                                  "event_ids": [h], "network": h}],
                   "changes": [{"id": h, "kind": h, "start": h, "description": h}]},
        "stages": [{"stage": h, "result": h}],
        "inventory": {"by_category": {h: 1}, "by_type": {h: 1}, "by_owasp": {h: 1},
                      "riskiest": [{"arn": h, "type": h, "risk": 90, "level": h, "reasons": [h], "findings": [h]}]},
        "findings": [{"severity": h, "first_seen": h, "detector": h, "identity": {"arn": h}, "explanation": h}],
        "incidents": [{"id": h, "severity": h, "identities": [h], "tactics": [h],
                       "response": [{"action": h, "identity": h, "refused": h}]}],
        "evaluation": {"scenarios": [{"id": h, "detected": True, "time_to_first_alert_seconds": 1, "detectors": [h]}],
                       "recall": h, "precision": h, "false_alerts_per_1000_identity_days": h},
        "events_per_day": [(f"2026-03-01 {h}", 3)],
        "top_identities": [{"principal": h, "principal_type": h, "events": 3}],
    }


def test_html_report_shows_hostile_strings_as_text():
    from nhiwatch.demo.report import render

    page = render(_report_data())
    parsed = _Elements()
    parsed.feed(page)
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "img", "a", "marquee", "iframe", "object"}, tags
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    assert all("javascript:" not in (value or "") for _, attrs in parsed.tags for value in attrs.values())
    assert not [c for c in RAW_CONTROLS if c in page]
    text = "".join(parsed.text)
    assert "<script>alert(1)</script>" in text and "<marquee>bold</marquee>" in text and "[bold red]x[/]" in text
    assert "\\x1b[31mRED" in text and "\\u202eevil" in text and ":secret:" in text


IAM_VULNERABLE = STRATUS.parents[1] / "iam" / "cloudsplaining" / "example.json"
HOSTILE_ROLE = "arn:aws:iam::999988887777:role/evil-" + HOSTILE


def hostile_role_export(path: Path) -> Path:
    """An authorization-details export of one role named with hostile text, which may write its own policy
    (a route to admin of one hop)."""
    name = HOSTILE_ROLE.split(":role/", 1)[1]
    path.write_text(json.dumps({"UserDetailList": [], "GroupDetailList": [], "Policies": [], "RoleDetailList": [{
        "Path": "/", "RoleName": name, "RoleId": "AROAEXAMPLEHOSTILE01", "Arn": HOSTILE_ROLE,
        "CreateDate": "2025-01-01T00:00:00Z", "InstanceProfileList": [], "AttachedManagedPolicies": [],
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "RolePolicyList": [{"PolicyName": "self-write", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "*"}]}}]}]}))
    return path


def test_html_report_lists_routes_to_admin_escaped(tmp_path: Path):
    """The report's routes to admin, from a real inventory: IAM Vulnerable's account (Cloudsplaining's
    example) and a role whose name is hostile text, which can write its own policy."""
    from datetime import datetime, timezone

    from nhiwatch.demo.report import ROUTES_LISTED, escalation_summary, render
    from nhiwatch.inventory.build import build_inventory
    from nhiwatch.inventory.sources import merge_authz, read_source

    exports: dict[str, list] = {}
    for path in (IAM_VULNERABLE, hostile_role_export(tmp_path / "hostile-authz.json")):
        for account, payload in read_source(path).accounts.items():
            exports.setdefault(account, []).append(payload)
    inventory = build_inventory({a: merge_authz(p) for a, p in exports.items()}, {},
                                datetime(2026, 6, 1, tzinfo=timezone.utc))
    summary = escalation_summary(inventory)
    assert summary["total"] > ROUTES_LISTED == len(summary["rows"])  # bounded, the rest counted
    assert [r["risk"] for r in summary["rows"]] == sorted((r["risk"] for r in summary["rows"]), reverse=True)
    data = _report_data()
    data["inventory"]["escalation"] = summary
    page = render(data)
    parsed = _Elements()
    parsed.feed(page)
    text = "".join(parsed.text)
    # IAM Vulnerable's two-hop chain, each hop's method and where it lands
    assume = "sts-001 (assume a role whose trust policy lets the caller in)"
    assert "privesc-AssumeRole-starting-role" in text and (
        f"{assume} → privesc-AssumeRole-intermediate-role → {assume} → privesc-AssumeRole-ending-role (admin)") in text
    assert f"… and {summary['total'] - ROUTES_LISTED} more identities with a route to admin." in text
    # the hostile role's row: its name as text, its self-write route
    assert "iam-005 (write an inline policy on a role) → script> <img src=x onerror=alert(1)>" in text
    assert "arn:aws:iam::999988887777:role/evil-[/] [bold red]x[/]" in text and "\\u202eevil" in text
    assert not {tag for tag, _ in parsed.tags} & {"script", "img", "a"}
    assert not [c for c in RAW_CONTROLS if c in page]


# -- the dashboard in Chromium ------------------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("Debian's chromium is not installed (scripts/setup-tests.sh installs it)")


def test_dashboard_shows_hostile_strings_as_text(home: Path, tmp_path: Path):
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    _finding_id, incident_id, user_arn = _ids(home)
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    served = subprocess.Popen([sys.executable, "-m", "nhiwatch", "serve", "--home", str(copy), "--port", "0", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_no_aws_env())
    try:
        url = json.loads(served.stdout.readline())["url"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
            page = browser.new_page()
            page.add_init_script("window.__pwned = 0; window.alert = () => { window.__pwned += 1; };")
            pages = {"findings": ("#/findings?severity=info", ".finding-row"),
                     "incident": (f"#/incident/{quote(incident_id)}", ".timeline-item"),
                     "identity": (f"#/identity?arn={quote(ROLE, safe='')}", "#profile-resources"),
                     "user": (f"#/identity?arn={quote(user_arn, safe='')}", "#identity-findings")}
            seen = {}
            for name, (fragment, ready) in pages.items():
                page.goto(url + fragment)
                page.wait_for_selector(ready, timeout=30_000)
                page.wait_for_timeout(300)
                seen[name] = page.inner_text("#view")
                # nothing from the events became an element, a handler or a link
                assert page.evaluate("document.querySelectorAll('script').length") == 1  # app.js only
                assert page.evaluate("document.querySelectorAll('#view img, #view iframe, #view b').length") == 0
                assert page.evaluate("[...document.querySelectorAll('a')].filter(a => !a.getAttribute('href')"
                                     ".startsWith('#')).length") == 0
                assert page.evaluate("window.__pwned") == 0
            browser.close()
    finally:
        served.terminate()
        served.wait(timeout=30)
    text = "\n".join(seen.values())
    assert not [c for c in RAW_CONTROLS if c in text]
    assert "<img src=x onerror=alert(1)><script>alert(1)</script>" in seen["identity"] and "[/]" in text
    from nhiwatch.core.text import visible

    assert visible(BUCKET) in seen["identity"] and SECRET in seen["identity"]  # escaped as the command line does
    assert "\\u202egpj.exe" in seen["identity"] and "\\x1b" in seen["user"]
