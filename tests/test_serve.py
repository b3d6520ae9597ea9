"""`nhiwatch serve`: the JSON API over a simulated organisation's store, and the pages in headless
Chromium (Playwright with Debian's chromium). The server runs as users run it, a `nhiwatch serve`
process; response actions reach moto's server mode through AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from moto_server import moto_endpoint  # noqa: F401
from nhiwatch.inventory.methods import method
from nhiwatch.inventory.persist import escalation_paths
from nhiwatch.pipeline import analyze
from nhiwatch.simulate.runner import SimConfig, simulate
from nhiwatch.store.db import Store

START = "2026-03-01"
SCENARIOS = ("role-chain-cross-account", "ci-key-two-roles")
RESPONDER_ROLE = "nhiwatch-responder"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("serve")
    data, home = tmp / "data", tmp / "home"
    simulate(data, SimConfig(seed=5, accounts=2, days=16, scale=0.6, start=START, scenarios=SCENARIOS))
    with Store(home) as store:
        analyze(store, [str(data / "cloudtrail")], iam=[str(data / "iam")],
                learn_until=datetime.fromisoformat(START).replace(tzinfo=timezone.utc) + timedelta(days=7))
        q = store.con.execute
        facts = {"identities": q("SELECT count(*) FROM identities").fetchone()[0],
                 "events": q("SELECT count(*) FROM events").fetchone()[0],
                 "findings": q("SELECT count(*) FROM findings").fetchone()[0],
                 "open_incidents": q("SELECT count(*) FROM incidents WHERE status = 'open'").fetchone()[0],
                 # what the principal graph found, as the inventory stored it: the riskiest identity with a
                 # route to admin, and an admin
                 "escalates": escalation_paths(store)[0],
                 "admin": q("SELECT arn, json_extract(record, '$.capabilities.admin') FROM identities WHERE "
                            "json_array_length(json_extract(record, '$.capabilities.admin')) > 0 ORDER BY arn "
                            "LIMIT 1").fetchone()}
    (tmp / "facts.json").write_text(json.dumps(facts))  # the server holds the store while it runs
    return home


def _aws_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return env


class Served:
    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "nhiwatch", "serve", "--home", str(home), "--port", "0",
                                         "--json", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=env)
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"serve did not start: {self.process.stderr.read()[-2000:]}")
        info = json.loads(line)
        self.url, self.token = info["url"], info["token"]

    def call(self, path: str, *, method: str = "GET", headers: dict | None = None, body: bytes | None = None
             ) -> tuple[int, dict]:
        request = urllib.request.Request(self.url.rstrip("/") + path, method=method, headers=headers or {},
                                         data=body if body is not None else (b"{}" if method == "POST" else None))
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(home: Path, moto_endpoint: str):  # noqa: F811
    served = Served(home, "--role-name", RESPONDER_ROLE, env=_aws_env(moto_endpoint))
    yield served
    served.stop()


# -- API -------------------------------------------------------------------------------------------

def test_overview_counts_what_the_store_holds(server: Served, home: Path):
    facts = json.loads((home.parent / "facts.json").read_text())
    status, overview = server.call("/api/overview")
    assert status == 200
    assert overview["identities"]["total"] == facts["identities"] == sum(overview["identities"]["by_type"].values())
    assert sum(overview["identities"]["by_risk"].values()) == facts["identities"]
    assert overview["events"]["total"] == facts["events"]
    assert overview["findings"]["total"] == facts["findings"] == sum(
        sum(day[s] for s in ("info", "low", "medium", "high", "critical")) for day in overview["findings"]["by_day"])
    assert overview["incidents"]["open"] == facts["open_incidents"] >= 1
    status, session = server.call("/api/session")
    assert session["can_act"] is False and session["auth"] == "none"  # loopback: reads open, acting needs the token
    assert server.call("/api/session", headers={"X-Nhiwatch-Token": server.token})[1]["can_act"] is True


def test_pages_of_the_inventory_cover_every_identity_once_in_order(server: Served):
    status, first = server.call("/api/identities?limit=7&sort=risk")
    assert status == 200 and first["total"] > 30
    seen, scores = [], []
    for offset in range(0, first["total"], 7):
        page = server.call(f"/api/identities?limit=7&offset={offset}&sort=risk")[1]
        assert page["offset"] == offset and len(page["items"]) == min(7, first["total"] - offset)
        seen += [row["arn"] for row in page["items"]]
        scores += [row["risk_score"] for row in page["items"]]
    assert len(seen) == len(set(seen)) == first["total"]
    assert scores == sorted(scores, reverse=True)
    by_name = server.call("/api/identities?limit=500&sort=name&order=asc")[1]["items"]
    assert [r["name"] for r in by_name] == sorted(r["name"] for r in by_name)
    lambdas = server.call("/api/identities?limit=500&search=task-role")[1]
    assert lambdas["total"] >= 1 and all("task-role" in r["arn"] for r in lambdas["items"])
    kind = first["facets"]["types"][0]
    typed = server.call(f"/api/identities?limit=500&type={kind}")[1]
    assert typed["total"] >= 1 and {r["nhi_type"] for r in typed["items"]} == {kind}


@pytest.mark.parametrize("path, status, words", [
    ("/api/identities?limit=0", 400, "limit"),
    ("/api/identities?limit=501", 400, "limit"),
    ("/api/identities?sort=password", 400, "sort"),
    ("/api/identities?account=12ab", 400, "account"),
    ("/api/identities?offset=-1", 400, "offset"),
    ("/api/identity", 400, "arn"),
    ("/api/identity?arn=arn:aws:iam::000000000000:role/nobody", 404, "no identity"),
    ("/api/findings?severity=urgent", 400, "severity"),
    ("/api/incidents/inc-0000000000000000", 404, "no incident"),
    ("/api/incidents/../../etc/passwd", 404, ""),
    ("/api/incidents/DROP TABLE", 400, "inc-"),
])
def test_bad_parameters_get_a_4xx_with_a_message(server: Served, path: str, status: int, words: str):
    got, body = server.call(path.replace(" ", "%20"))
    assert got == status, body
    assert words in body["detail"]


def test_identity_shows_its_baseline_posture_and_findings(server: Served):
    findings = server.call("/api/findings?severity=medium&limit=50")[1]
    arn = findings["items"][0]["identity"]
    status, detail = server.call("/api/identity?arn=" + urllib.request.quote(arn, safe=""))
    assert status == 200
    assert detail["identity"]["arn"] == arn and detail["identity"]["risk_reasons"]
    profile = detail["profile"]
    assert len(profile["heatmap"]) == 7 and all(len(row) == 24 for row in profile["heatmap"])
    assert sum(map(sum, profile["heatmap"])) == profile["events"] > 0
    assert profile["apis"][0]["count"] >= profile["apis"][-1]["count"] and profile["apis"][0]["first_seen"]
    assert {f["id"] for f in detail["findings"]} >= {f["id"] for f in findings["items"] if f["identity"] == arn}


def test_identity_carries_its_routes_to_admin(server: Served, home: Path):
    facts = json.loads((home.parent / "facts.json").read_text())
    stored = facts["escalates"]
    status, detail = server.call("/api/identity?arn=" + urllib.request.quote(stored["arn"], safe=""))
    assert status == 200
    esc = detail["escalation"]
    assert esc["admin"] == [] and [m["id"] for m in esc["methods"]] == stored["methods"]
    assert all(m["title"] == method(m["id"]).title and m["conditional"] is False for m in esc["methods"])
    shortest = esc["shortest"]
    assert shortest["admin"] == stored["route"]["admin"] and shortest["start"] == stored["arn"]
    assert [(h["from"], h["to"], h["method"]) for h in shortest["hops"]] == [
        (h["from"], h["to"], h["method"]) for h in stored["route"]["hops"]]
    for hop in shortest["hops"]:  # each hop with its title and the checks that make it, down to the statement
        assert hop["title"] == method(hop["method"]).title and hop["conditional"] is False
        assert hop["checks"] and all(c["verdict"] == "allowed" and c["statements"] for c in hop["checks"])
    assert esc["routes_total"] == len(esc["routes"]) == len(stored["routes"])
    assert [r["shortest"] for r in esc["routes"]].count(True) == 1
    admin_arn, admin_via = facts["admin"]
    admin = server.call("/api/identity?arn=" + urllib.request.quote(admin_arn, safe=""))[1]["escalation"]
    assert admin == {"admin": json.loads(admin_via), "methods": [], "shortest": None, "routes": [], "routes_total": 0}


def test_actions_need_the_token_and_this_origin(server: Served):
    incident = server.call("/api/incidents")[1]["items"][0]["id"]
    path = f"/api/incidents/{incident}/response/0/approve"
    status, body = server.call(path, method="POST")
    assert status == 401 and "token" in body["detail"]
    status, body = server.call(path, method="POST", headers={"X-Nhiwatch-Token": "x" * 32})
    assert status == 401
    status, body = server.call(path, method="POST", headers={"X-Nhiwatch-Token": server.token,
                                                             "Origin": "http://attacker.example"})
    assert status == 403 and "cross-site" in body["detail"]
    status, body = server.call("/api/overview", headers={"Host": "rebound.attacker.example"})
    assert status == 403  # DNS rebinding: a loopback server answers loopback names only
    assert server.call(f"/api/actions?incident={incident}")[1]["items"] == []  # nothing was attempted


def test_openapi_describes_every_api_the_pages_use(server: Served):
    status, spec = server.call("/api/openapi.json")
    assert status == 200
    paths = set(spec["paths"])
    assert {"/api/overview", "/api/identities", "/api/identity", "/api/findings", "/api/incidents",
            "/api/incidents/{incident_id}", "/api/incidents/{incident_id}/response",
            "/api/incidents/{incident_id}/response/{index}/approve", "/api/actions",
            "/api/actions/{action_id}/undo"} <= paths
    static = Path(__file__).parents[1] / "src/nhiwatch/server/static"
    pages_js = "\n".join(p.read_text() for p in sorted(static.rglob("*.js")))  # app.js and the modules it imports
    for path in paths:
        assert path.split("{")[0].rstrip("/") in pages_js, path


def test_binding_beyond_loopback_needs_a_token(home: Path, tmp_path: Path):
    run = subprocess.run([sys.executable, "-m", "nhiwatch", "serve", "--home", str(home), "--host", "0.0.0.0",
                          "--port", "0", "--json"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--token" in run.stderr
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    token = "t" * 40
    served = Served(copy, "--host", "0.0.0.0", "--token", token)
    try:
        port = served.url.rsplit(":", 1)[1].rstrip("/")
        served.url = f"http://127.0.0.1:{port}/"
        status, body = served.call("/api/overview")
        assert status == 401 and "token" in body["detail"]
        assert served.call("/api/overview", headers={"Authorization": f"Bearer {token}"})[0] == 200
        assert served.call("/api/overview", headers={"X-Nhiwatch-Token": token})[0] == 200
        assert served.call("/api/session", headers={"X-Nhiwatch-Token": token})[1]["auth"] == "token"
    finally:
        served.stop()


# -- pages, in a real browser -----------------------------------------------------------------------

def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("Debian's chromium is not installed (scripts/setup-tests.sh installs it)")


def _not_blank(page, png: bytes) -> dict:
    """Colours and non-white share of a screenshot, measured by the browser itself on a canvas."""
    import base64

    return page.evaluate("""async (data) => {
        const img = new Image(); img.src = 'data:image/png;base64,' + data; await img.decode();
        const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const px = g.getImageData(0, 0, c.width, c.height).data; const colours = new Set(); let ink = 0;
        for (let i = 0; i < px.length; i += 16) {
            colours.add((px[i] >> 4) + ',' + (px[i+1] >> 4) + ',' + (px[i+2] >> 4));
            if (px[i] < 235 || px[i+1] < 235 || px[i+2] < 235) ink++;
        }
        return {colours: colours.size, ink: ink / (px.length / 16), width: c.width, height: c.height};
    }""", base64.b64encode(png).decode())


def _responder_can_act_in(endpoint: str, account: str) -> boto3.client:
    """IAM in `account` as the response role (moto gives an assumed role's credentials that account)."""
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{RESPONDER_ROLE}",
                            RoleSessionName="test-setup")["Credentials"]
    return boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def _cut(text: str, n: int) -> str:
    """format.js's truncate."""
    return text if len(text) <= n else text[:n - 1] + "…"


def test_the_dashboard_in_chromium(server: Served, home: Path, moto_endpoint: str, tmp_path: Path):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

        # overview, opened with the token (it leaves the address bar)
        page.goto(f"{server.url}?token={server.token}#/")
        expect(page.locator("#page-overview")).to_be_visible()
        expect(page.locator("#chart-findings rect").first).to_be_attached()
        assert "token=" not in page.url
        shot = _not_blank(page, page.screenshot(path=str(tmp_path / "overview.png")))
        assert shot["colours"] >= 8 and shot["ink"] > 0.05, shot

        # inventory: search, then open an identity with a learned baseline
        page.goto(f"{server.url}#/inventory")
        expect(page.locator("#inventory-table tr.identity-row").first).to_be_visible()
        total = server.call("/api/identities?limit=1")[1]["total"]
        expect(page.locator("#page-info")).to_contain_text(f"{total:,}")
        page.fill("#inventory-search", "task-role")
        expect(page.locator("#inventory-table tr.identity-row").first).to_contain_text("task-role")
        rows = page.locator("#inventory-table tr.identity-row")
        assert all("task-role" in rows.nth(i).inner_text() for i in range(rows.count()))

        incidents = server.call("/api/incidents")[1]["items"]
        chain = next(i for i in incidents if len(i["identities"]) >= 2)
        arn = chain["identities"][0]
        page.goto(f"{server.url}#/identity?arn={urllib.request.quote(arn, safe='')}")
        expect(page.locator("#heatmap")).to_be_visible()
        cells = page.locator("#heatmap rect.cell")
        expect(cells).to_have_count(168)
        counts = [int(c) for c in cells.evaluate_all("cells => cells.map(c => c.dataset.count)")]
        profile = server.call("/api/identity?arn=" + urllib.request.quote(arn, safe=""))[1]["profile"]
        assert counts == [n for row in profile["heatmap"] for n in row] and sum(counts) > 0
        expect(page.locator("#profile-apis")).to_contain_text(profile["apis"][0]["name"])
        expect(page.locator("#identity-findings")).to_be_visible()
        shot = _not_blank(page, page.locator("#heatmap").screenshot(path=str(tmp_path / "heatmap.png")))
        assert shot["colours"] >= 3, shot

        # the riskiest identity with a route to admin: its shortest route drawn hop by hop, from the inventory
        facts = json.loads((home.parent / "facts.json").read_text())
        stored = facts["escalates"]
        hops = stored["route"]["hops"]
        page.goto(f"{server.url}#/identity?arn={urllib.request.quote(stored['arn'], safe='')}")
        expect(page.locator("#route-graph")).to_be_visible()
        principals = list(dict.fromkeys([stored["arn"], *(a for h in hops for a in (h["from"], h["to"])),
                                         stored["route"]["admin"]]))
        nodes = page.locator("#route-graph g.route-node")
        expect(nodes).to_have_count(len(principals))
        assert nodes.evaluate_all("gs => gs.map(g => g.dataset.id)") == principals
        assert page.locator("#route-graph g.route-node text.node-label").all_text_contents() == [
            _cut(a.rsplit("/", 1)[-1], 30) for a in principals]
        admin_end = page.locator("#route-graph g.route-node.admin-end")
        expect(admin_end).to_have_attribute("data-id", stored["route"]["admin"])
        expect(admin_end.locator("text.admin-tag")).to_have_text("admin")
        edges = page.locator("#route-graph g.hop")
        assert edges.evaluate_all("gs => gs.map(g => [g.dataset.source, g.dataset.target, g.dataset.method])") == [
            [h["from"], h["to"], h["method"]] for h in hops]
        assert edges.locator("text.method-id").all_text_contents() == [
            f"{i}. {h['method']}" for i, h in enumerate(hops, 1)]
        assert edges.locator("text.method-title").all_text_contents() == [
            _cut(method(h["method"]).title, 36) for h in hops]
        assert page.locator("#route-graph g.hop.conditional").count() == 0  # the simulated routes hold for sure
        # a hop's evidence: the permissions checked and the statements granting them, on click and on hover
        full = stored["route"]["hops"]
        edges.nth(len(hops) - 1).locator("text.method-id").click()
        evidence = page.locator("#route-evidence")
        expect(evidence.locator("h3")).to_contain_text(f"Hop {len(hops)} of {len(hops)}: {full[-1]['method']}")
        rows = evidence.locator("#route-checks tbody tr")
        expect(rows).to_have_count(len(full[-1]["checks"]))
        for i, check in enumerate(full[-1]["checks"]):
            expect(rows.nth(i)).to_contain_text(check["action"])
            expect(rows.nth(i)).to_contain_text(check["statements"][0])
        expect(edges.nth(len(hops) - 1)).to_have_class(re.compile(r"\bselected\b"))
        edges.nth(0).locator("text.method-id").hover()
        expect(evidence.locator("h3")).to_contain_text(f"Hop 1 of {len(hops)}: {full[0]['method']}")
        expect(evidence).to_contain_text(full[0]["checks"][0]["action"])
        expect(page.locator("#other-routes li")).to_have_count(len(stored["routes"]) - 1)
        admin_arn, admin_via = facts["admin"]
        page.goto(f"{server.url}#/identity?arn={urllib.request.quote(admin_arn, safe='')}")
        expect(page.locator("#already-admin")).to_have_text(f"already admin (via {', '.join(json.loads(admin_via))})")
        expect(page.locator("#route-graph")).to_have_count(0)

        # an incident and its graph
        page.goto(f"{server.url}#/incident/{chain['id']}")
        expect(page.locator("#incident-graph")).to_be_visible()
        graph = server.call(f"/api/incidents/{chain['id']}")[1]["graph"]
        expect(page.locator("#incident-graph g.node")).to_have_count(len(graph["nodes"]))
        assert page.locator("#incident-graph .edge").count() >= 1
        expect(page.locator("#incident-timeline li.timeline-item").first).to_be_visible()
        shot = _not_blank(page, page.locator("#incident-graph").screenshot(path=str(tmp_path / "graph.png")))
        assert shot["colours"] >= 4 and shot["ink"] > 0.01, shot

        # response: approve one dry-run action for real (against moto), then undo it
        plan = server.call(f"/api/incidents/{chain['id']}/response")[1]["actions"]
        action = next(a for a in plan if a["kind"] in ("revoke-session", "revoke-sessions") and not a["refused"])
        account, role = action["identity"].split(":")[4], action["identity"].rsplit("/", 1)[-1]
        iam = _responder_can_act_in(moto_endpoint, account)
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
                        Path="/" + "/".join(action["identity"].split(":role/", 1)[1].split("/")[:-1]) + "/"
                        if action["identity"].split(":role/", 1)[1].count("/") else "/")
        card = page.locator(f"#response div.action-card[data-index='{action['index']}']")
        expect(card.locator("pre.dry-run")).to_contain_text("put-role-policy")
        assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []  # a dry-run changed nothing
        page.once("dialog", lambda dialog: dialog.accept())
        card.locator("button.approve").click()
        expect(card.locator("span.action-status")).to_have_text("executed", timeout=30_000)
        assert len(iam.list_role_policies(RoleName=role)["PolicyNames"]) == 1  # the deny is on the role in AWS
        expect(page.locator("#action-log")).to_contain_text(action["kind"])
        page.once("dialog", lambda dialog: dialog.accept())
        card.locator("button.undo").click()
        expect(card.locator("span.action-status")).to_have_text("undone", timeout=30_000)
        assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []
        recorded = server.call(f"/api/actions?incident={chain['id']}")[1]["items"]
        assert [(a["kind"], a["status"]) for a in recorded] == [(action["kind"], "undone")]
        browser.close()
    assert not errors, errors


def test_routes_to_admin_on_iam_vulnerable_in_chromium(tmp_path: Path):
    """The route kinds the simulated organisation lacks, on IAM Vulnerable's account (Cloudsplaining's example):
    a conditional hop, a group standing for its member, a foothold on any user; and a role named with hostile
    text, shown as text."""
    from playwright.sync_api import expect, sync_playwright

    from nhiwatch.pipeline import load_inventory, read_iam
    from test_hostile_output import HOSTILE_ROLE, IAM_VULNERABLE, hostile_role_export

    home = tmp_path / "home"
    sources, problems = read_iam([IAM_VULNERABLE, hostile_role_export(tmp_path / "hostile.json")])
    assert not problems
    with Store(home) as store:
        load_inventory(store, sources, "test", datetime(2026, 6, 1, tzinfo=timezone.utc))
    served = Served(home)
    account = "arn:aws:iam::200611803367"
    sso = f"{account}:role/aws-service-role/sso.amazonaws.com/AWSServiceRoleForSSO"
    try:
        esc = served.call("/api/identity?arn=" + urllib.request.quote(sso, safe=""))[1]["escalation"]
        assert esc["methods"][0] == {"id": "iam-012", "title": method("iam-012").title, "conditional": True}
        assert all(m["conditional"] for m in esc["methods"]) and esc["routes_total"] == len(esc["methods"])
        hop = esc["shortest"]["hops"][0]
        assert esc["shortest"]["conditional"] and hop["conditional"]
        assert [c["verdict"] for c in hop["checks"]] == ["conditional", "allowed"]
        assert hop["checks"][0]["undecided"] == ["aws:PrincipalOrgMasterAccountId"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def open_identity(arn: str) -> None:
                page.goto(f"{served.url}#/identity?arn={urllib.request.quote(arn, safe='')}")
                expect(page.locator("#route-to-admin")).to_be_visible()

            open_identity(sso)  # the conditional hop is dashed, and says so
            edge = page.locator("#route-graph g.hop.conditional")
            expect(edge).to_have_count(1)
            expect(edge.locator("text.method-id")).to_have_text("1. iam-012 (conditional)")
            assert edge.locator("path.edge").evaluate("e => getComputedStyle(e).strokeDasharray") not in ("", "none")
            expect(page.locator("#route-evidence")).to_contain_text("aws:PrincipalOrgMasterAccountId")

            open_identity(f"{account}:group/privesc11-PutGroupPolicy-group")  # the member writes its group
            member = f"{account}:user/privesc11-PutGroupPolicy-user"
            expect(page.locator("#route-graph g.route-edge.implied")).to_have_text("member")
            expect(page.locator("#route-graph g.hop")).to_have_attribute("data-method", "iam-011")
            expect(page.locator("#route-graph g.route-node.admin-end")).to_have_attribute("data-id", member)

            open_identity(f"{account}:role/privesc13-AddUserToGroup-role")  # any user it adds to the group
            expect(page.locator("#route-graph g.route-node.admin-end text.node-label")).to_have_text("any user")
            expect(page.locator("#route-graph g.route-edge.implied")).to_have_text("joins, becomes admin")

            open_identity(f"{account}:role/fp1-allow-and-deny-role")
            expect(page.locator("#route-to-admin")).to_contain_text("no route to admin")

            open_identity(HOSTILE_ROLE)  # its name in the graph and the evidence, as text
            expect(page.locator("#route-graph g.route-node.admin-end")).to_have_attribute(
                "data-id", re.compile(re.escape("evil-[/] [bold red]x[/]")))
            expect(page.locator("#route-evidence")).to_contain_text("<script>alert(1)</script>")
            assert page.locator("#page-identity script, #page-identity img, #route-graph foreignObject").count() == 0
            browser.close()
        assert not errors, errors
    finally:
        served.stop()


def test_serve_and_watch_share_the_store(home: Path, tmp_path: Path):
    """`serve --watch`: the dashboard answers while the watcher ingests into the same store (one process,
    no lock errors), and what the watcher adds shows up in the API."""
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    with Store(copy, read_only=True) as store:
        before = store.con.execute("SELECT count(*) FROM events").fetchone()[0]
        sample = store.con.execute("SELECT source_file FROM events LIMIT 1").fetchone()[0]
    incoming = tmp_path / "intake-secret"
    secret = "s" * 32
    incoming.write_text(secret)
    config = tmp_path / "watch.toml"
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config.write_text(f'[[sources]]\ntype = "intake"\nlisten = "127.0.0.1:{port}"\nsecret_env = "TEST_SECRET"\n')
    env = dict(os.environ, TEST_SECRET=secret)
    served = Served(copy, "--watch", str(config), env=env)
    try:
        record = json.loads(Path(sample).read_text() if not sample.endswith(".gz") else
                            __import__("gzip").decompress(Path(sample).read_bytes()))["Records"][0]
        record = dict(record, eventID="serve-watch-0001", eventTime=record["eventTime"])
        body = json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": record}).encode()
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/events", data=body, method="POST",
                                                 headers={"X-Nhiwatch-Secret": secret,
                                                          "Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    assert response.status == 200
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "the intake did not start"
                time.sleep(0.2)
        for _ in range(20):  # the pages keep answering while the watcher writes
            status, overview = served.call("/api/overview")
            assert status == 200
            if overview["events"]["total"] == before + 1:
                break
            time.sleep(0.2)
        assert overview["events"]["total"] == before + 1
    finally:
        served.stop()
    assert "lock" not in served.process.stderr.read().lower()
