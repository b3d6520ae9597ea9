"""The store (idempotency, migrations, one writer) and the command line (help, JSON, exit codes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, ingest
from nhiwatch.core.event import EVENT_SCHEMA, event_model_markdown
from nhiwatch.ingest import pipeline
from nhiwatch.store.migrations import MIGRATIONS
from nhiwatch.store.db import Store
from test_formats import make_event

CONTENT_DIGEST = """
    SELECT count(*), coalesce(sum(hash(uid, event_id, event_time, principal, source_file, source_locator,
                                       request_parameters)), 0)
    FROM events"""


def digest(store: Store) -> tuple:
    events = store.con.execute(CONTENT_DIGEST).fetchone()
    quarantined = store.con.execute(
        "SELECT count(*), coalesce(sum(hash(qid, reason, raw)), 0) FROM quarantine").fetchone()
    return events, quarantined


def test_ingesting_twice_leaves_the_store_unchanged(store, cloudtrail_dir):
    first = ingest(store, cloudtrail_dir)
    before = digest(store)
    stats_before = store.stats()
    second = ingest(store, cloudtrail_dir)
    assert digest(store) == before
    assert store.stats() == stats_before
    assert second.accepted == 0
    assert second.duplicate == first.accepted + first.duplicate
    assert second.quarantined == first.quarantined


def test_parallel_and_serial_ingest_store_the_same(tmp_path, cloudtrail_dir, monkeypatch):
    monkeypatch.setattr(pipeline, "_PARALLEL_MIN_BYTES", 0)
    with Store(tmp_path / "serial") as serial:
        ingest(serial, cloudtrail_dir, workers=1)
        expected = digest(serial)
    with Store(tmp_path / "parallel") as parallel:
        summary = ingest(parallel, cloudtrail_dir, workers=2)
        assert digest(parallel) == expected
        assert summary.files == 118


def test_events_table_matches_the_event_model(store):
    columns = store.con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'events' ORDER BY ordinal_position"
    ).fetchall()
    # the event model, then the store's own bookkeeping: which insert stored the event
    assert [c[0] for c in columns] == EVENT_SCHEMA.names + ["ingest_batch"]
    assert store.schema_version() == len(MIGRATIONS)


def test_reopening_does_not_migrate_again(tmp_path):
    Store(tmp_path / "h").close()
    with Store(tmp_path / "h") as again:
        assert again.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(len(MIGRATIONS)),)


def test_event_model_doc_is_generated_from_the_schema():
    assert (REPO / "docs" / "event-model.md").read_text() == event_model_markdown()


# -- command line ---------------------------------------------------------------------------------

def run(*args: str, home: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("NHIWATCH_HOME", None) if env is None or "NHIWATCH_HOME" not in env else None
    cmd = [sys.executable, "-m", "nhiwatch", *args]
    if home is not None:
        cmd += ["--home", str(home)]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=120)


@pytest.mark.parametrize("command", [[], ["ingest"], ["stats"], ["quarantine"], ["schema"]])
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: nhiwatch" in result.stdout


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("nhiwatch ")


def test_ingest_json_summary_and_stats(tmp_path, cloudtrail_dir):
    home = tmp_path / "h"
    result = run("ingest", str(cloudtrail_dir / "format-edge-cases"), "--json", home=home)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["records"], summary["accepted"], summary["duplicate"]) == (30, 28, 2)
    assert len(summary["files_detail"]) == 8
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    stats = json.loads(run("stats", "--json", home=home).stdout)
    assert stats["events"] == 28 and stats["quarantined"] == 0
    assert stats["first_event"] == "2014-03-06T17:10:34Z"
    assert stats["identities_by_type"]["user"] >= 1


def test_home_from_the_environment(tmp_path, cloudtrail_dir):
    home = tmp_path / "env-home"
    result = run("ingest", str(cloudtrail_dir / "format-edge-cases"), "--quiet", env={"NHIWATCH_HOME": str(home)})
    assert result.returncode == 0 and result.stdout == ""
    assert (home / "nhiwatch.duckdb").exists()


def test_exit_codes(tmp_path):
    home = tmp_path / "h"
    missing = run("ingest", str(tmp_path / "nope"), "--json", home=home)
    assert missing.returncode == 2 and "no such file" in json.loads(missing.stdout)["error"]
    assert run("stats", home=tmp_path / "empty").returncode == 1

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.jsonl").write_text(json.dumps(make_event(1)) + "\n{oops\n")
    assert run("ingest", str(tmp_path / "in"), "--quiet", home=home).returncode == 0
    assert run("ingest", str(tmp_path / "in"), "--quiet", "--strict", home=home).returncode == 3
    (tmp_path / "in" / "cut.json.gz").write_bytes(b"\x1f\x8b\x08\x00\x00\x00")
    partial = run("ingest", str(tmp_path / "in"), "--json", home=home)
    assert partial.returncode == 3
    assert json.loads(partial.stdout)["files_with_errors"] == 1

    listed = json.loads(run("quarantine", "--json", home=home).stdout)
    # The unreadable gzip is reported as a file error (above); the bad line is quarantined.
    assert [(row["locator"], row["reason"][:15]) for row in listed] == [("line 2", "malformed JSON:")]
    files = store_files(home)
    assert files["cut.json.gz"] == "truncated gzip: the file ends before the compressed stream does"


def store_files(home: Path) -> dict[str, str | None]:
    with Store(home, read_only=True) as opened:
        rows = opened.con.execute("SELECT path, error FROM ingest_files ORDER BY run_id").fetchall()
    return {Path(p).name: e for p, e in rows}


def test_a_second_writer_is_told_the_store_is_busy(tmp_path):
    with Store(tmp_path / "h"):
        (tmp_path / "in.json").write_text(json.dumps([make_event(1)]))
        busy = run("ingest", str(tmp_path / "in.json"), "--json", home=tmp_path / "h")
    assert busy.returncode == 4
    assert "in use by another nhiwatch process" in json.loads(busy.stdout)["error"]


def test_schema_command(tmp_path):
    result = run("schema", "--json")
    fields = json.loads(result.stdout)["fields"]
    assert [f["name"] for f in fields] == EVENT_SCHEMA.names and all(f["doc"] for f in fields)
    assert run("schema", "--markdown").stdout == event_model_markdown()


def test_ci_runs_the_readme_quick_start_commands():
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("## ", 1)[0]
    first_block = quick_start.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2, commands
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci, f"{command!r} is not run by .ci/run"
    assert (REPO / commands[1].split()[1]).is_file(), "command 2 names its set-up script"


def test_docs_command_regenerates_every_generated_document(tmp_path):
    current = run("docs", "--check", "--json")
    checked = json.loads(current.stdout)
    assert current.returncode == 0 and checked["stale"] == [] and len(checked["documents"]) == 6
    (tmp_path / "detectors.md").write_text("old\n")
    stale = run("docs", "--check", "--json", "--folder", str(tmp_path))
    assert stale.returncode == 1 and len(json.loads(stale.stdout)["stale"]) == 6
    written = json.loads(run("docs", "--json", "--folder", str(tmp_path)).stdout)
    assert {d["state"] for d in written["documents"]} == {"written"}
    assert (tmp_path / "detectors.md").read_text() == (REPO / "docs" / "detectors.md").read_text()
