"""Security Hub across the accounts of an organisation.

A simulated organisation of three accounts is analysed once; its findings go to Security Hub from one
member account, as a deployment there would send them. boto3 reaches moto's server mode for S3, IAM
and the findings each account holds, through `SecurityHubGate` (tests/securityhub_gate.py) for STS and
Security Hub: it applies AWS's documented BatchImportFindings account rule and role trust, which moto
does not. Each finding must land in its own account's hub, a rejected one must be dead-lettered
alone with its reason while the rest are delivered, and `config check --connect` must say which
accounts are reachable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator

from moto_server import aws_live, moto_endpoint  # noqa: F401
from securityhub_gate import SecurityHubGate, trust_policy
from nhiwatch.core.finding import Finding
from nhiwatch.core.registry import ConfigError
from nhiwatch.detect.detectors import DETECTORS
from nhiwatch.outputs.accounts import AccountRoles, AccountSessions
from nhiwatch.outputs.asff import finding_account, to_asff
from nhiwatch.outputs.sinks import PartialDelivery, SecurityHubSink
from nhiwatch.pipeline import analyze
from nhiwatch.simulate.pack import pack_trail
from nhiwatch.simulate.runner import SimConfig, simulate
from nhiwatch.store.db import Store
from nhiwatch.watch.config import parse_config
from nhiwatch.watch.delivery import Outbox

SIM = SimConfig(seed=5, accounts=3, days=9, scale=0.3, start="2026-03-01",
                scenarios=("role-chain-cross-account", "bulk-secret-retrieval"))
LEARN_UNTIL = "2026-03-04T00:00:00Z"
ROLE = "NhiwatchSecurityHubImport"
TEMPLATE = f"arn:aws:iam::{{account}}:role/{ROLE}"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    """The organisation's trail, its findings (analysed once) and its three accounts, busiest first."""
    tmp = tmp_path_factory.mktemp("shub")
    simulate(tmp / "data", SIM, workers=1)
    with Store(tmp / "home") as store:
        analyze(store, [str(tmp / "data" / "cloudtrail")],
                learn_until=datetime.fromisoformat(LEARN_UNTIL.replace("Z", "+00:00")), workers=1)
        findings = [json.loads(f) for (f,) in store.con.execute("SELECT finding FROM findings ORDER BY id").fetchall()]
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding_account(finding)] = counts.get(finding_account(finding), 0) + 1
    return {"tmp": tmp, "home": tmp / "home", "findings": findings,
            "accounts": sorted(counts, key=lambda a: -counts[a])}


@pytest.fixture
def gate(aws_live, monkeypatch):
    """The account rules in front of moto, serving STS and Security Hub to every boto3 client."""
    gate = SecurityHubGate(aws_live)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", gate.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECURITYHUB", gate.url)
    yield gate
    gate.close()


def _act_in(moto_url: str, account: str) -> boto3.session.Session:
    """An administrator's session in `account`, straight to moto (the test's own set-up and checks)."""
    sts = boto3.client("sts", endpoint_url=moto_url, region_name=REGION)
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/test-admin",
                                  RoleSessionName="test")["Credentials"]
    return boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"],
                                 aws_secret_access_key=credentials["SecretAccessKey"],
                                 aws_session_token=credentials["SessionToken"], region_name=REGION)


def _run_as(moto_url: str, account: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Make this process (and its children) act in `account`, as nhiwatch deployed there would."""
    credentials = _act_in(moto_url, account).get_credentials()
    env = {"AWS_ACCESS_KEY_ID": credentials.access_key, "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
           "AWS_SESSION_TOKEN": credentials.token}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _prepare(moto_url: str, member: str, accounts: list[str], *, roles_in: list[str], external_id: str | None = None):
    """Security Hub on in every account; the import role (trusting `member`) in `roles_in`."""
    for account in accounts:
        session = _act_in(moto_url, account)
        session.client("securityhub", endpoint_url=moto_url).enable_security_hub()
        if account in roles_in:
            session.client("iam", endpoint_url=moto_url).create_role(
                RoleName=ROLE, AssumeRolePolicyDocument=trust_policy(member, external_id))


def _hub(moto_url: str, account: str) -> list[dict]:
    client = _act_in(moto_url, account).client("securityhub", endpoint_url=moto_url)
    found, token = [], None
    while True:
        page = client.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        found += page["Findings"]
        token = page.get("NextToken")
        if not token:
            return found


def _store_copy(org: dict, tmp_path: Path) -> Store:
    home = tmp_path / "home"
    shutil.copytree(org["home"], home)
    return Store(home)


def _deliver(store: Store, sinks: list, tmp_path: Path, *, max_attempts: int = 3) -> Outbox:
    """Every finding of the store through the outbox to the sinks, as a watch delivers them."""
    outbox = Outbox(store, sinks, tmp_path / "dead-letter", max_attempts=max_attempts, backoff_seconds=0.0)
    findings = [Finding.from_dict(json.loads(f)) for (f,) in
                store.con.execute("SELECT finding FROM findings ORDER BY id").fetchall()]
    outbox.enqueue(findings)
    for sink in sinks:
        sink.open()
    outbox.start()
    deadline = time.monotonic() + 120
    while not outbox.idle() and time.monotonic() < deadline:
        outbox.dispatch()
        outbox.collect(0.2)
    outbox.stop()
    assert outbox.idle(), outbox.backlog()
    return outbox


def _dead(tmp_path: Path, sink: str) -> list[dict]:
    path = tmp_path / "dead-letter" / f"{sink}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _sink(name: str, **table) -> SecurityHubSink:
    config = parse_config({"sinks": [{"type": "securityhub", "name": name, "region": REGION, **table}]}, "test")
    sink = config.sinks[0]
    assert isinstance(sink, SecurityHubSink)
    return sink


# -- the format -------------------------------------------------------------------------------------

def _example(detector, severity: str, arn: str) -> dict:
    return {"id": "nw-0123456789abcdef0123", "detector": detector.id, "title": detector.title, "severity": severity,
            "score": 70, "identity": {"arn": arn, "type": "role", "account_id": arn.split(":")[4]},
            "session": None, "first_seen": "2026-03-05T10:00:00Z", "last_seen": "2026-03-05T11:00:00Z",
            "event_ids": ["e1", "e2"], "mitre": list(detector.mitre), "stratus": [],
            "explanation": "why " * 400, "evidence": {}, "tactic": detector.tactic, "schema_version": 1}


def test_asff_is_valid_and_names_each_findings_own_account_and_partition(org):
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.operation_model("BatchImportFindings").input_shape
    partitions = {"aws": "arn:aws:iam::111122223333:role/ci", "aws-us-gov": "arn:aws-us-gov:iam::222233334444:role/ci",
                  "aws-cn": "arn:aws-cn:iam::333344445555:user/deploy"}
    examples = [(_example(d, s, arn), p) for d in DETECTORS for s in ("info", "low", "medium", "high", "critical")
                for p, arn in partitions.items()]
    examples += [(f, "aws") for f in org["findings"]]
    assert {f["detector"] for f, _ in examples} >= {d.id for d in DETECTORS}
    converted = [(to_asff(f, REGION, "999999999999"), f, p) for f, p in examples]
    for start in range(0, len(converted), 100):
        report = ParamValidator().validate({"Findings": [a for a, _, _ in converted[start:start + 100]]}, shape)
        assert not report.has_errors(), report.generate_report()
    for asff, finding, partition in converted:
        account = finding_account(finding)
        assert asff["AwsAccountId"] == account
        assert asff["ProductArn"] == f"arn:{partition}:securityhub:{REGION}:{account}:product/{account}/default"
        assert asff["Resources"][0]["Partition"] == partition
        provider = asff["FindingProviderFields"]
        assert provider["Severity"] == {"Label": provider["Severity"]["Label"], "Original": finding["severity"]}
        assert provider["Types"] and "Severity" not in asff and "Normalized" not in json.dumps(asff)


def test_sink_configuration_problems_are_each_named():
    with pytest.raises(ConfigError) as caught:
        parse_config({"sinks": [
            {"type": "securityhub", "region": "Europe", "account_id": 111122223333,
             "role_arn": "arn:aws:iam::111122223333:role/import-{account}",
             "roles": {"222233334444": "arn:aws:iam::555566667777:role/Import", "12": "arn:aws:iam::12:role/x"},
             "external_id": "x", "accounts": ["222233334444", "nope"]}]}, "test")
    problems = "\n".join(caught.value.problems)
    for fragment in ("sinks[0].region", "sinks[0].account_id", "sinks[0].role_arn: must be an IAM role ARN whose "
                     "account is {account}", "sinks[0].roles.222233334444: the role arn:aws:iam::555566667777:role/Import "
                     "is in account 555566667777", "sinks[0].roles.12", "sinks[0].external_id", "sinks[0].accounts"):
        assert fragment in problems, problems
    sink = _sink("ok", role_arn=TEMPLATE, roles={"222233334444": "arn:aws:iam::222233334444:role/Other"},
                 external_id="org-7", accounts=["222233334444", "333344445555"])
    roles = sink.account_roles
    assert roles.role_for("222233334444") == "arn:aws:iam::222233334444:role/Other"
    assert roles.role_for("333344445555") == f"arn:aws:iam::333344445555:role/{ROLE}"
    assert roles.external_id == "org-7" and roles.configured_accounts() == ["222233334444", "333344445555"]


# -- delivery -------------------------------------------------------------------------------------

def test_each_finding_lands_in_its_own_account_and_a_rejected_one_is_dead_lettered_alone(org, gate, aws_live,
                                                                                            monkeypatch, tmp_path):
    member, second, third = org["accounts"]
    _prepare(aws_live, member, org["accounts"], roles_in=[second, third], external_id="org-7")
    _run_as(aws_live, member, monkeypatch)
    by_account = {a: sorted(f["id"] for f in org["findings"] if finding_account(f) == a) for a in org["accounts"]}

    # Before: every finding written for the caller's default product, as the sink used to. AWS takes the
    # caller's own findings and rejects every other account's.
    old_shape = []
    for finding in org["findings"]:
        asff = to_asff(finding, REGION, member)
        asff["ProductArn"] = f"arn:aws:securityhub:{REGION}:{member}:product/{member}/default"
        old_shape.append(asff)
    hub = boto3.session.Session().client("securityhub", region_name=REGION)  # as the member account
    rejected_before = sum(len(hub.batch_import_findings(Findings=old_shape[i:i + 100])["FailedFindings"])
                          for i in range(0, len(old_shape), 100))
    assert rejected_before == len(by_account[second]) + len(by_account[third]) > 0
    for account in (second, third):  # nothing of theirs landed anywhere
        assert not _hub(aws_live, account)
    gate.calls.clear()

    # After: each account's findings through its own credentials. AWS rejects one finding of the third
    # account (for a reason of its own) and throttles one of the second (retried, then delivered).
    gate.refuse_next(third, "InvalidInput", "Finding does not adhere to Amazon Finding Format.")
    gate.refuse_next(second, "ThrottlingException", "Rate exceeded")
    with _store_copy(org, tmp_path) as store:
        outbox = _deliver(store, [_sink("hub", role_arn=TEMPLATE, external_id="org-7",
                                        accounts=[second, third])], tmp_path)
        backlog = outbox.backlog()["hub"]
        attempts = dict(store.con.execute("SELECT finding_id, attempts FROM outbox").fetchall())
    refused = [i for call in gate.calls for i, (code, _) in call.rejected.items() if code == "InvalidInput"]
    throttled = [i for call in gate.calls for i, (code, _) in call.rejected.items() if code == "ThrottlingException"]
    assert len(refused) == 1 and refused[0] in by_account[third]
    assert len(throttled) == 1 and attempts[throttled[0]] == 2
    assert not [c for c in gate.calls if c.rejected and any(code == "AccessDeniedException"
                                                            for code, _ in c.rejected.values())]
    for account, ids in by_account.items():
        landed = _hub(aws_live, account)
        assert sorted(h["Id"] for h in landed) == sorted(set(ids) - set(refused))
        assert {h["AwsAccountId"] for h in landed} == {account}
        assert {h["ProductArn"] for h in landed} == {f"arn:aws:securityhub:{REGION}:{account}:product/{account}/default"}
    assert {c.caller for c in gate.calls} == set(org["accounts"])  # each imported by its own account
    assert backlog["delivered"] == len(org["findings"]) - 1 and backlog["dead"] == 1
    assert backlog["pending"] == backlog["inflight"] == 0
    dead = _dead(tmp_path, "hub")
    assert [d["finding"]["id"] for d in dead] == refused
    assert f"account {third} rejected it: InvalidInput: Finding does not adhere" in dead[0]["error"]
    print(f"\nfindings {len(org['findings'])} in {len(org['accounts'])} accounts, sent from {member}: "
          f"rejected before {rejected_before}; after: delivered {backlog['delivered']}, dead-lettered {backlog['dead']}")


def test_an_account_without_a_working_role_is_dead_lettered_with_what_to_configure(org, gate, aws_live, monkeypatch,
                                                                                   tmp_path):
    member, second, third = org["accounts"]
    _prepare(aws_live, member, org["accounts"], roles_in=[second])
    _run_as(aws_live, member, monkeypatch)
    by_account = {a: sorted(f["id"] for f in org["findings"] if finding_account(f) == a) for a in org["accounts"]}
    # `named` has a role for the second account only; `template` names one in every account, but the
    # third account has no such role, so AssumeRole is refused there.
    named = _sink("named", roles={second: f"arn:aws:iam::{second}:role/{ROLE}"})
    template = _sink("template", role_arn=TEMPLATE)
    with _store_copy(org, tmp_path) as store:
        outbox = _deliver(store, [named, template], tmp_path)
        backlog = outbox.backlog()
    for name in ("named", "template"):
        assert backlog[name]["delivered"] == len(by_account[member]) + len(by_account[second])
        assert backlog[name]["dead"] == len(by_account[third])
        dead = _dead(tmp_path, name)
        assert sorted(d["finding"]["id"] for d in dead) == by_account[third]
    assert all(f"account {third} is not the account nhiwatch runs in ({member}) and no role is configured for it: "
               "set role_arn" in d["error"] for d in _dead(tmp_path, "named"))
    assert all(f"cannot assume arn:aws:iam::{third}:role/{ROLE} for account {third}: AccessDenied" in d["error"]
               and f"trust account {member}" in d["error"] for d in _dead(tmp_path, "template"))
    assert (member, f"arn:aws:iam::{third}:role/{ROLE}") in gate.assume_role_refused
    assert sorted(h["Id"] for h in _hub(aws_live, second)) == by_account[second]
    assert not _hub(aws_live, third)


def test_calls_hold_100_findings_and_a_finding_of_another_partition_or_no_account_fails_alone(org, gate, aws_live,
                                                                                               monkeypatch):
    member = org["accounts"][0]
    _prepare(aws_live, member, [member], roles_in=[])
    _run_as(aws_live, member, monkeypatch)
    detector = DETECTORS[0]
    many = []
    for n in range(150):
        finding = _example(detector, "high", f"arn:aws:iam::{member}:role/worker-{n}")
        many.append({**finding, "id": f"nw-{n:020x}"})
    gov = {**_example(detector, "high", "arn:aws-us-gov:iam::222233334444:role/ci"), "id": "nw-" + "a" * 20}
    nameless = {**_example(detector, "high", "arn:aws:iam::123456789:role/short"), "id": "nw-" + "b" * 20}
    nameless["identity"]["account_id"] = "123456789"
    sink = _sink("hub")
    with pytest.raises(PartialDelivery) as caught:
        sink.send([*many, gov, nameless], redelivery=False)
    failed = caught.value.failed
    assert set(failed) == {gov["id"], nameless["id"]} and all(e.permanent for e in failed.values())
    assert "aws-us-gov partition and this sink's region us-east-1 in aws" in str(failed[gov["id"]])
    assert "'123456789' is not a 12-digit AWS account id" in str(failed[nameless["id"]])
    assert [len(call.accepted) for call in gate.calls] == [100, 50]
    assert len(_hub(aws_live, member)) == 150


def test_assumed_credentials_are_kept_per_account_and_renewed_before_they_expire(org, gate, aws_live, monkeypatch):
    member, second, _ = org["accounts"]
    _prepare(aws_live, member, [second], roles_in=[second])
    _run_as(aws_live, member, monkeypatch)
    clock = [datetime.now(timezone.utc)]
    sessions = AccountSessions(AccountRoles(template=TEMPLATE), REGION, "test", now=lambda: clock[0])
    first = sessions.client("securityhub", second)
    assert sessions.client("securityhub", second) is first  # cached
    assert sessions.client("securityhub", member) is sessions.client("securityhub", member)
    expires = sessions._assumed[second].expires
    clock[0] = expires - sessions.refresh_margin + timedelta(seconds=1)  # inside the margin: renewed
    renewed = sessions.client("securityhub", second)
    assert renewed is not first and sessions._assumed[second].expires >= expires
    assert renewed.describe_hub()["HubArn"].endswith(f":{second}:hub/default")


# -- the command line -------------------------------------------------------------------------------

def _nhiwatch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nhiwatch", *args], capture_output=True, text=True, timeout=900,
                          env=env)


def test_watch_and_config_check_from_one_member_account(org, gate, aws_live, monkeypatch, tmp_path):
    member, second, third = org["accounts"]
    _prepare(aws_live, member, org["accounts"], roles_in=[second, third])
    env = {**os.environ, **_run_as(aws_live, member, monkeypatch)}
    trail = _act_in(aws_live, member).client("s3", endpoint_url=aws_live)
    trail.create_bucket(Bucket="org-trail")
    for key, body in pack_trail(org["tmp"] / "data" / "cloudtrail").items():
        trail.put_object(Bucket="org-trail", Key=key, Body=body)
    home = tmp_path / "home"
    config = tmp_path / "watch.toml"
    config.write_text(f"""
home = "{home}"
learn_until = "{LEARN_UNTIL}"
[[sources]]
type = "s3"
bucket = "org-trail"
prefix = "AWSLogs/"
[[sinks]]
type = "securityhub"
region = "{REGION}"
role_arn = "{TEMPLATE}"
accounts = ["{second}", "{third}"]
""")
    check = _nhiwatch("config", "check", str(config), "--connect", "--json", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)["accounts"]["securityhub"]
    assert [(e["account"], e["reachable"]) for e in report] == [(member, True), *sorted([(second, True), (third, True)])]
    assert report[0]["via"] == "own credentials" and report[1]["via"] == TEMPLATE.replace("{account}", report[1]["account"])
    text = _nhiwatch("config", "check", str(config), "--connect", env=env)
    assert text.returncode == 0 and f"account {third} via arn:aws:iam::{third}:role/{ROLE}: reachable" in text.stdout

    gate.refuse_next(second, "InvalidInput", "Finding does not adhere to Amazon Finding Format.")
    run = _nhiwatch("watch", "--once", "--config", str(config), "--json", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)["sinks"]["securityhub"]
    with Store(home, read_only=True) as store:
        expected = {a: set() for a in org["accounts"]}
        for (text_finding,) in store.con.execute("SELECT finding FROM findings").fetchall():
            finding = json.loads(text_finding)
            expected[finding_account(finding)].add(finding["id"])
    assert all(expected.values()), "findings in each of the three accounts"
    refused = [i for call in gate.calls for i in call.rejected]
    assert len(refused) == 1 and refused[0] in expected[second]
    for account, ids in expected.items():
        assert sorted(h["Id"] for h in _hub(aws_live, account)) == sorted(ids - set(refused))
    total = sum(len(ids) for ids in expected.values())
    assert (summary["delivered"], summary["dead"], summary["pending"]) == (total - 1, 1, 0)
    dead = [json.loads(line) for line in (home / "dead-letter" / "securityhub.jsonl").read_text().splitlines()]
    assert [d["finding"]["id"] for d in dead] == refused and "InvalidInput" in dead[0]["error"]

    # an account the sink must reach but cannot: named in accounts, no role there
    outsider = "444455556666"
    _act_in(aws_live, outsider).client("securityhub", endpoint_url=aws_live).enable_security_hub()
    config.write_text(config.read_text().replace(f'accounts = ["{second}", "{third}"]',
                                                 f'accounts = ["{second}", "{third}", "{outsider}"]'))
    check = _nhiwatch("config", "check", str(config), "--connect", "--json", env=env)
    assert check.returncode == 2
    answer = json.loads(check.stdout)
    reachable = {e["account"]: e["reachable"] for e in answer["accounts"]["securityhub"]}
    assert reachable == {member: True, second: True, third: True, outsider: False}
    assert any(p.startswith(f"sink securityhub: account {outsider}: cannot assume arn:aws:iam::{outsider}:role/{ROLE}")
               for p in answer["problems"]), answer["problems"]
