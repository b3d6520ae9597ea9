"""`nhiwatch spark ...`: the detection engine on Apache Spark, and loading its output into a store."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer

from nhiwatch.cli.common import (Exit, HomeOpt, JsonOpt, QuietOpt, check_time, console, emit_json, err, fail,
                                 open_store, plain, styled, time_option)

spark_app = typer.Typer(help="The same engine on Apache Spark, for an organisation's whole CloudTrail "
                             "(needs the extra: pip install 'nhiwatch\\[spark]', and Java 17+).",
                        no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


def _need_spark(as_json: bool) -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise fail("PySpark is not installed: pip install 'nhiwatch[spark]'", Exit.USAGE, as_json) from None
    if shutil.which("java") is None and not __import__("os").environ.get("JAVA_HOME"):
        raise fail("Spark needs Java 17 or newer: install a JRE (Debian: openjdk-17-jre-headless) or set JAVA_HOME",
                   Exit.USAGE, as_json)


@spark_app.command("analyze")
def spark_analyze(
    paths: Annotated[list[str], typer.Argument(help="CloudTrail files or folders: local paths or s3:// URLs "
                                                    "(s3a:// on most clusters).", show_default=False)],
    out: Annotated[str, typer.Option(help="Output folder (or, on a cluster, a URL such as s3a://...): "
                                          "findings.jsonl, findings/, state/, quarantine/ (Parquet), summary.json. "
                                          "Replaced if it exists.")],
    inventory: Annotated[Optional[Path], typer.Option(help="Store holding the identity inventory (nhiwatch "
                                                           "inventory load); without it, identities are typed "
                                                           "from CloudTrail alone.", show_default=False)] = None,
    learn_until: Annotated[Optional[str], typer.Option(help="Events before this time only teach (ISO-8601).",
                                                       callback=check_time, show_default=False)] = None,
    master: Annotated[Optional[str], typer.Option(help="Spark master, e.g. local[4]; leave out under "
                                                       "spark-submit.", show_default=False)] = None,
    partitions: Annotated[Optional[int], typer.Option(min=1, help="Identity partitions (default: "
                                                                  "spark.sql.shuffle.partitions).",
                                                      show_default=False)] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Read, normalize, group by identity and run the per-identity engine on Spark, in time order;
    findings are the embedded engine's, id for id. Exit 0 done, 2 usage (no Spark, no Java, bad
    option), 1 the job failed."""
    _need_spark(as_json)
    from nhiwatch.spark.job import analyze, spark_session

    learn_time = time_option(learn_until, "--learn-until", as_json)
    if inventory is not None and not (inventory / "nhiwatch.duckdb").exists():
        raise fail(f"no store at {inventory}: give the --home of a store with an inventory", Exit.USAGE, as_json)
    missing = [p for p in paths if "://" not in p and not Path(p).exists()]
    if missing:
        raise fail(f"no such path: {', '.join(missing)}", Exit.USAGE, as_json)
    if not quiet and not as_json:
        err.print(styled((f"starting Spark ({plain(master or 'from spark-submit')})...", "dim")))
    spark = spark_session(master, partitions=partitions)
    spark.sparkContext.setLogLevel("ERROR")
    try:
        summary = analyze(spark, paths, out, inventory_home=inventory, learn_until=learn_time, partitions=partitions)
    finally:
        spark.stop()
    if as_json:
        emit_json(vars(summary))
    elif not quiet:
        console.print(f"{summary.events:,} events ({summary.duplicates:,} duplicates, {summary.quarantined:,} "
                      f"quarantined) from {summary.files:,} files; {summary.identities:,} identities; "
                      f"{summary.findings:,} findings {summary.by_severity}")
        console.print(f"seconds: {summary.seconds}; output: {plain(out)} (load it: nhiwatch spark load {plain(out)})")


@spark_app.command("load")
def spark_load(
    out: Annotated[Path, typer.Argument(help="The --out folder of a spark analyze run.")],
    correlate: Annotated[bool, typer.Option(help="Correlate into incidents afterwards (needs the events in the "
                                                 "store for the links between identities).")] = True,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load a Spark run's baselines and findings into an embedded store (dashboard, incidents, response)."""
    from nhiwatch.spark.job import load

    if not (out / "state").is_dir() or not (out / "findings").is_dir():
        raise fail(f"{out} is not the output of nhiwatch spark analyze (no state/ and findings/)", Exit.USAGE,
                   as_json)
    store = open_store(home, as_json)
    try:
        result = load(store, out)
        if correlate:
            from nhiwatch.correlate.incidents import correlate as run_correlation

            result["incidents"] = run_correlation(store).get("incidents")
    finally:
        store.close()
    if as_json:
        emit_json(result)
    else:
        console.print(f"loaded {result['profiles']:,} baselines and {result['findings_added']:,} new findings"
                      + (f"; {result['incidents']} incidents" if "incidents" in result else ""))


@spark_app.command("watch")
def spark_watch(
    path: Annotated[str, typer.Argument(help="Folder or bucket prefix that receives CloudTrail objects.")],
    out: Annotated[Path, typer.Option(help="Output folder: findings/, findings-jsonl/, state/, quarantine/.")],
    checkpoint: Annotated[Path, typer.Option(help="Streaming checkpoint folder (keep it: a restart resumes "
                                                  "from it).")],
    inventory: Annotated[Optional[Path], typer.Option(help="Store holding the identity inventory.",
                                                      show_default=False)] = None,
    state: Annotated[Optional[Path], typer.Option(help="Learned baselines to start from: the state/ folder of "
                                                       "a spark analyze run (also gives the peer groups).",
                                                  show_default=False)] = None,
    once: Annotated[bool, typer.Option(help="Take the objects there now, judge them, and stop.")] = False,
    interval: Annotated[int, typer.Option(min=1, help="Seconds between micro-batches.")] = 60,
    files_per_trigger: Annotated[int, typer.Option(min=1, help="Objects per micro-batch at most.")] = 1000,
    master: Annotated[Optional[str], typer.Option(help="Spark master, e.g. local[4]; leave out under "
                                                       "spark-submit.", show_default=False)] = None,
    partitions: Annotated[Optional[int], typer.Option(min=1, help="Identity partitions per micro-batch (default: "
                                                                  "spark.sql.shuffle.partitions).",
                                                      show_default=False)] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Follow new CloudTrail objects with Spark Structured Streaming: each micro-batch is judged by the
    per-identity engine, starting from each identity's state after the previous one. Exactly once
    across restarts (output and state are versioned by micro-batch). Exit 0 stopped, 2 usage, 1 failed."""
    _need_spark(as_json)
    from nhiwatch.spark import stream
    from nhiwatch.spark.job import spark_session

    if "://" not in path and not Path(path).is_dir():
        raise fail(f"no such folder: {path}", Exit.USAGE, as_json)
    if state is not None and not any(state.glob("*.parquet")):
        raise fail(f"{state} holds no state Parquet files (give the state/ folder of a spark analyze run)",
                   Exit.USAGE, as_json)
    spark = spark_session(master, partitions=partitions)
    spark.sparkContext.setLogLevel("ERROR")
    try:
        query = stream.start(spark, path, out, checkpoint, inventory_home=inventory, state_dir=state,
                             files_per_trigger=files_per_trigger, once=once, interval_seconds=interval)
        if not quiet and not as_json:
            err.print(styled((f"watching {plain(path)} (Ctrl-C to stop)..." if not once else f"judging {plain(path)}...",
                              "dim")))
        try:
            query.awaitTermination()
        except KeyboardInterrupt:
            query.stop()
        findings = stream.findings(out)
        states = stream.latest_states(out)
    finally:
        spark.stop()
    result = {"findings": len(findings), "identities": len(states), "out": str(out)}
    if as_json:
        emit_json(result)
    elif not quiet:
        console.print(f"{len(findings):,} findings so far; {len(states):,} identities with a baseline; {plain(out)}")
